from django.urls import path
from django.views.generic import RedirectView

from generator import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="generate"), name="home"),
    path("generate/", views.GenerateView.as_view(), name="generate"),
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<uuid:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<uuid:pk>/status.json", views.job_status, name="job-status"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("gallery/", views.GalleryView.as_view(), name="gallery"),
    path("explore/", views.ExploreView.as_view(), name="explore"),
    path("history/", views.HistoryView.as_view(), name="history"),
    path("images/<uuid:pk>/", views.ImageDetailView.as_view(), name="image-detail"),
    path("images/<uuid:pk>/file.png", views.image_file, name="image-file"),
    path("images/<uuid:pk>/publish/", views.image_publish, name="image-publish"),
    path("images/<uuid:pk>/delete/", views.ImageDeleteView.as_view(), name="image-delete"),
]
