"""Sign up, sign in and sign out, on Django's own auth views (password validators stay on)."""
from django.contrib.auth import views as auth_views
from django.urls import path

from retroportal import views
from retroportal.login_throttle import LoginView

urlpatterns = [
    path("signup/", views.SignUpView.as_view(), name="signup"),
    path("login/", LoginView.as_view(), name="login"),  # with failed-attempt lockout
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
]
