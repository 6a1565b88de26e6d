from django.contrib import admin
from django.urls import include, path

from generator.api.token_views import token_settings

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("retroportal.accounts_urls")),
    path("api/", include("gallery.api_urls")),  # likes, collections, users' pictures; before the JSON 404
    path("api/", include("generator.api.urls")),
    path("account/token/", token_settings, name="account-token"),
    path("", include("gallery.urls")),  # home, explore, gallery, image pages, collections, profiles, models
    path("", include("generator.urls")),
]

handler500 = "retroportal.middleware.server_error"  # a 503 page when the cause is the database being down
