"""URLs under /api/ (included from retroportal/urls.py). The token settings page is /account/token/."""
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from generator.api import views

app_name = "api"

router = SimpleRouter(trailing_slash=True)
router.register("generations", views.GenerationViewSet, basename="generation")
router.register("images", views.ImageViewSet, basename="image")
router.register("models", views.AIModelViewSet, basename="model")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    *router.urls,
    re_path(r"^.*$", views.api_not_found),  # JSON 404 for every other /api/ URL (also malformed ids)
]
