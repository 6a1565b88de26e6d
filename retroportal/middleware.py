"""PostgreSQL down: answer 503 with a friendly page (JSON under /api/), never a traceback.

`DatabaseUnavailableMiddleware.process_exception` turns a `django.db.OperationalError` / `InterfaceError`
raised by a view (or while rendering its template) into a 503 with `Retry-After`; `server_error` (the
project's handler500) does the same for one raised by another middleware (session, messages). The page
uses no database (no user, no context processors), so it renders while PostgreSQL is away. Nothing needs a
restart afterwards: each request opens (or health-checks, CONN_HEALTH_CHECKS) its connection again.
"""
import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

log = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER = 30
MESSAGE = "The site's database is unavailable right now; please try again in a minute."


def unavailable_response(request) -> HttpResponse:
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(loader.render_to_string("503.html", {"message": MESSAGE}), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DB_ERRORS):
            log.error("database unavailable for %s %s: %s", request.method, request.path, exception)
            _close_broken_connections()
            return unavailable_response(request)
        return None


def _close_broken_connections() -> None:
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        try:
            if conn.in_atomic_block:
                continue  # ATOMIC_REQUESTS / test transactions: leave them to their owner
            conn.close_if_unusable_or_obsolete()
        except Exception:
            pass


def server_error(request, *args, **kwargs):
    """handler500: a database outage raised outside a view still answers 503, anything else the usual 500."""
    exception = sys.exc_info()[1]
    if isinstance(exception, DB_ERRORS):
        _close_broken_connections()
        return unavailable_response(request)
    return defaults.server_error(request, *args, **kwargs)


class RejectNulBytesMiddleware:
    """A NUL byte in the path is never a real file or object: 404 before any view turns it into a path.

    (os.path functions raise ValueError on it, which would otherwise be a 500 in file-serving views.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info:
            from django.http import HttpResponseNotFound

            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": "Not found."}, status=404)
            return HttpResponseNotFound("Not found.")
        return self.get_response(request)
