"""Sign up, sign in and sign out, on Django's own auth views (password validators stay on)."""
from django.contrib.auth import views as auth_views
from django.urls import path

from retroportal import views

urlpatterns = [
    path("signup/", views.SignUpView.as_view(), name="signup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
]
