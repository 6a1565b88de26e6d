"""Account page where a signed-in user creates or revokes their API token (/account/token/).

One token per user (DRF authtoken). The key is shown in full only in the answer to "Create", never
again afterwards (later visits show its first characters), so it does not sit on screen or in the
browser history; creating a new one replaces (revokes) the old one. Admins can also make tokens with
`manage.py drf_create_token USERNAME`.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_settings(request):
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            Token.objects.filter(user=request.user).delete()
            new_key = Token.objects.create(user=request.user).key
        elif action == "revoke":
            deleted, _ = Token.objects.filter(user=request.user).delete()
            messages.success(request, "Your API token was revoked." if deleted else "You had no API token.")
            return redirect("account-token")
        else:
            messages.error(request, "Unknown action.")
            return redirect("account-token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "account/token.html", {
        "token": token,
        "new_key": new_key,
        "api_root": request.build_absolute_uri("/api/"),
    }, status=200)
