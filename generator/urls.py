from django.urls import path

from generator import prompt_tools, views

# Home, /explore/, /gallery/ and the image page are gallery's (gallery/urls.py, included first).
urlpatterns = [
    path("generate/", views.GenerateView.as_view(), name="generate"),
    path("generate/tokens.json", prompt_tools.prompt_tokens, name="prompt-tokens"),
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<uuid:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<uuid:pk>/status.json", views.job_status, name="job-status"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:pk>/preview.png", views.job_preview, name="job-preview"),
    path("history/", views.HistoryView.as_view(), name="history"),
    path("images/<uuid:pk>/file.png", views.image_file, name="image-file"),
    path("images/<uuid:pk>/publish/", views.image_publish, name="image-publish"),
    path("images/<uuid:pk>/delete/", views.ImageDeleteView.as_view(), name="image-delete"),
]
