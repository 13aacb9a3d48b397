"""Request context and deny-by-default permission enforcement."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from .context import client_ip, current_ip
from .forbidden import forbidden
from .permissions import AUTHENTICATED, PUBLIC, declared_permission, has_capability


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.client_ip = client_ip(request)
        token = current_ip.set(request.client_ip)
        # Times are stored in UTC and shown in the viewer's own zone (profile setting).
        user = getattr(request, "user", None)
        tzname = getattr(user, "timezone", None) if user is not None and (
            user.is_authenticated) else None
        try:
            timezone.activate(ZoneInfo(tzname)) if tzname else timezone.deactivate()
        except (ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            current_ip.reset(token)
            timezone.deactivate()


class PermissionMiddleware:
    """Refuse any route that declares no permission; enforce page permissions and MFA.

    API views (DRF) declare a per-method map and are checked by DeclaredPermission, which
    also knows token scopes; here we only insist that they declared something.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        decl = declared_permission(view_func)
        if decl is None:
            return forbidden(request, "This route declares no permission.")
        if isinstance(decl, dict) or decl == PUBLIC:
            return None  # DRF routes are checked by DeclaredPermission
        user = request.user
        if not user.is_authenticated:
            return redirect(f"{reverse(settings.LOGIN_URL)}?next={request.get_full_path()}")
        from .auth import pending_security_step

        step = pending_security_step(request)
        if step and not getattr(view_func, "wk_allowed_during_setup", False):
            return redirect(step)
        if decl == AUTHENTICATED or has_capability(user, decl):
            return None
        return forbidden(request)


# One policy for every page (docs/security.md): scripts, styles, images, fonts and fetches
# only from our own origin (our static files); no inline script, no inline event handler, no
# eval (htmx runs with allowEval off), no inline style attribute; not framed; forms post only
# to us. `data:` images are the inline SVG icons and QR codes.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class SecurityHeadersMiddleware:
    """The Content-Security-Policy on every response, and `Cache-Control: no-store` on every
    response to an authenticated request (a session or an API token): a shared or back-button
    cache must never keep what a signed-in person saw."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or (
                "HTTP_AUTHORIZATION" in request.META):
            response["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response
