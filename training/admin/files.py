"""Serving a file from a row's folder to staff: the path may not leave the folder, only known types are sent."""
from pathlib import Path

from django.http import FileResponse, Http404

SERVED_SUFFIXES = {".png": "image/png", ".json": "application/json", ".txt": "text/plain; charset=utf-8"}


def serve_file(folder: Path, rel: str, suffixes: dict[str, str], cache_control: str) -> FileResponse:
    """`folder/rel` as a download-safe response (nosniff), or 404 when it escapes the folder or is not served."""
    root = Path(folder).resolve()
    target = (root / rel).resolve()
    suffix = target.suffix.lower()
    if not target.is_relative_to(root) or not target.is_file() or suffix not in suffixes:
        raise Http404("no such file")
    response = FileResponse(open(target, "rb"), content_type=suffixes[suffix])
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = cache_control
    return response
