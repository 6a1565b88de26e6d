from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("retroportal.accounts_urls")),
    path("api/", include("generator.api.urls")),
    path("", include("generator.urls")),
]
