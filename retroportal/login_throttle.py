"""Sign-in throttling: too many failed attempts for one username from one IP address lock that pair out.

RETROPORTAL_LOGIN_MAX_FAILURES failures within RETROPORTAL_LOGIN_LOCKOUT_SECONDS lock the (username, IP)
pair for the rest of that window; while locked even the right password is refused, with a message saying
how long to wait, and no password is checked at all (no oracle, no hashing cost for the attacker to burn).
A successful sign-in clears the count. Counts live in Django's cache (`CACHES`): per process with the
default local-memory cache, so with several gunicorn workers point CACHES at Redis for one shared count.
"""
import hashlib
import time

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache


def _key(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\0{ip}".encode()).hexdigest()[:32]
    return f"retroportal:login-failures:{digest}"


def client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-in attempts for this account from your address. "
                  "Sign-in is locked for %(minutes)s more minute(s); please try again later.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        key = _key(username, client_ip(self.request))
        record = cache.get(key) or {"count": 0, "since": time.time()}
        window = settings.RETROPORTAL_LOGIN_LOCKOUT_SECONDS
        if record["count"] >= settings.RETROPORTAL_LOGIN_MAX_FAILURES:
            left = max(1, int(record["since"] + window - time.time()))
            raise forms.ValidationError(
                self.error_messages["locked"], code="locked", params={"minutes": (left + 59) // 60}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                record["count"] += 1
                remaining = max(1, int(record["since"] + window - time.time()))
                cache.set(key, record, timeout=remaining)
            raise
        cache.delete(key)
        return cleaned


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True
