"""Public downloads under /agent/v1/: the installers and the packages. Nothing here is
secret (the server URL, the agent's code, the signer key's public fingerprint); the
enrollment token is an argument of the one-line command, never part of these URLs."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse, JsonResponse
from django.utils.html import escape
from django.views.decorators.http import require_GET

from watchkeeper.core.permissions import public

from . import dist, scripts

NOT_BUILT = ("The agent packages are not built on this server: run `watchkeeper agent-dist` "
             "(./wk up does it).")


def _not_built() -> JsonResponse:
    return JsonResponse({"type": "about:blank", "title": "Agent packages not built",
                         "status": 503, "detail": NOT_BUILT, "code": "not_built"},
                        status=503, content_type="application/problem+json")


def _installer(render, content_type: str) -> HttpResponse:
    manifest = dist.load()
    if manifest is None:
        return _not_built()
    response = HttpResponse(render(manifest), content_type=f"{content_type}; charset=utf-8")
    # It names the current agent version and signer fingerprint.
    response["Cache-Control"] = "no-store"
    return response


@public
@require_GET
def install_sh(request):
    return _installer(scripts.shell_installer, "text/x-shellscript")


@public
@require_GET
def install_ps1(request):
    return _installer(scripts.powershell_installer, "text/plain")


@public
@require_GET
def dist_index(request):
    """A pip --find-links page: every wheel, with its SHA-256 for pip to check."""
    manifest = dist.load()
    if manifest is None:
        return _not_built()
    links = "\n".join(
        f'<a href="{escape(name)}#sha256={sha}">{escape(name)}</a><br>'
        for name, sha in sorted(manifest.files.items()))
    return HttpResponse(f"<!doctype html>\n<html><head><title>Watchkeeper agent "
                        f"{escape(manifest.version)}</title></head><body>\n{links}\n"
                        "</body></html>\n", content_type="text/html; charset=utf-8")


@public
@require_GET
def dist_file(request, name: str):
    path = dist.file_path(name)
    if path is None:
        return _not_built() if dist.load() is None else JsonResponse(
            {"type": "about:blank", "title": "Not found", "status": 404,
             "detail": "No such agent package.", "code": "not_found"},
            status=404, content_type="application/problem+json")
    content_type = ("application/vnd.debian.binary-package" if name.endswith(".deb")
                    else "application/zip")
    response = FileResponse(path.open("rb"), content_type=content_type, as_attachment=True,
                            filename=name)
    response["Cache-Control"] = "public, max-age=3600"
    return response
