from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404
from django.shortcuts import redirect, resolve_url
from django.views.generic import FormView


class SignUpView(FormView):
    """Create an account with Django's UserCreationForm and sign in at once.

    RETROPORTAL_ALLOW_SIGNUP=0 switches it off: the page is a 404 and no link points to it.
    """

    form_class = UserCreationForm
    template_name = "registration/signup.html"

    def dispatch(self, request, *args, **kwargs):
        if not settings.RETROPORTAL_ALLOW_SIGNUP:
            raise Http404("Sign-up is switched off on this site.")
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.save()
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(resolve_url(settings.LOGIN_REDIRECT_URL))
