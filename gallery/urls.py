from django.urls import path

from gallery.views import actions, browse, collections

urlpatterns = [
    path("", browse.HomeView.as_view(), name="home"),
    path("explore/", browse.ExploreView.as_view(), name="explore"),
    path("gallery/", browse.GalleryView.as_view(), name="gallery"),
    path("gallery/bulk/", actions.bulk, name="gallery-bulk"),
    path("images/<uuid:pk>/", browse.ImageDetailView.as_view(), name="image-detail"),
    path("images/<uuid:pk>/like/", actions.like, name="image-like"),
    path("images/<uuid:pk>/report/", actions.report, name="image-report"),
    path("images/<uuid:pk>/tags/", actions.set_tags, name="image-tags"),
    path("collections/", collections.CollectionListView.as_view(), name="collection-list"),
    path("collections/<int:pk>/", collections.CollectionDetailView.as_view(), name="collection-detail"),
    path("collections/<int:pk>/edit/", collections.collection_edit, name="collection-edit"),
    path("collections/<int:pk>/delete/", collections.collection_delete, name="collection-delete"),
    path("collections/<int:pk>/add/", collections.collection_add, name="collection-add"),
    path("collections/<int:pk>/remove/", collections.collection_remove, name="collection-remove"),
    path("u/<str:username>/", browse.ProfileView.as_view(), name="profile"),
    path("models/<slug:name>/", browse.ModelPageView.as_view(), name="model-page"),
    path("models/<slug:name>/download/", browse.model_download, name="model-download"),
]
