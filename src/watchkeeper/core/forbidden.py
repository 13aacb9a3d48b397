"""The 403 answer: a styled page in the product's shell saying why and what to do, or a
problem+json body for the API (one place, used by the permission middleware, views and
Django's handler403)."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.template import loader


def forbidden(request, reason: str = "You do not have permission to see this page.",
              ) -> HttpResponse:
    if request.path.startswith(("/api/", "/agent/")):
        return JsonResponse({"type": "about:blank", "title": "Forbidden", "status": 403,
                             "detail": reason}, status=403,
                            content_type="application/problem+json")
    user = getattr(request, "user", None)
    try:
        body = loader.render_to_string("403.html", {
            "reason": reason, "path": request.path,
            "signed_in": bool(user and user.is_authenticated)}, request=request)
    except Exception:  # the refusal must never fail (e.g. a URLconf without the shell)
        return HttpResponseForbidden(reason)
    return HttpResponse(body, status=403)


def handler403(request, exception=None):
    return forbidden(request, str(exception) if exception and str(exception) else
                     "You do not have permission to see this page.")
