"""Gallery URLs under /api/ (included from retroportal/urls.py before generator's API, whose last
pattern answers a JSON 404 for every other /api/ URL)."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from gallery import api

app_name = "gallery-api"

router = SimpleRouter(trailing_slash=True)
router.register("collections", api.CollectionViewSet, basename="collection")

urlpatterns = [
    path("images/<uuid:pk>/like/", api.ImageLikeView.as_view(), name="image-like"),
    path("users/<str:username>/images/", api.UserImagesView.as_view(), name="user-images"),
    *router.urls,
]
