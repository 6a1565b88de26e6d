"""Token authentication for the image file view, so API clients can fetch the `url` the API returns.

The PNG is served by the website's permission-checked view (`image-file`, /images/<uuid>/file.png),
which sees only Django's session user. This middleware lets a GET/HEAD request for that one view
carry `Authorization: Token <key>` instead of a session cookie: it sets request.user from the token
(DRF's TokenAuthentication, same rules as the API), and answers 401 for a bad token. Every other
URL is untouched, and no unsafe method is ever authenticated by token outside DRF (no CSRF bypass).
"""
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

TOKEN_URL_NAMES = {"image-file", "job-preview"}  # the PNG of an image; the live preview of a job


class TokenAuthForFilesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("GET", "HEAD") and self._wants_token(request):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            if match is not None and match.url_name in TOKEN_URL_NAMES:
                auth = TokenAuthentication()
                try:
                    result = auth.authenticate(request)
                except exceptions.AuthenticationFailed as exc:
                    response = JsonResponse({"detail": str(exc.detail)}, status=401)
                    response["WWW-Authenticate"] = auth.authenticate_header(request)
                    return response
                if result is not None:
                    request.user = result[0]
        return self.get_response(request)

    @staticmethod
    def _wants_token(request) -> bool:
        header = get_authorization_header(request).split()
        return bool(header) and header[0].lower() == b"token"
