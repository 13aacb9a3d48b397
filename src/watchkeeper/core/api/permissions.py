"""Per-method capability declarations for API views, with token scopes."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..choices import TokenScope
from ..models import ApiToken
from ..permissions import PUBLIC, has_capability


class DeclaredPermission(BasePermission):
    """A view declares `permissions = {"GET": "clients.view", "POST": "clients.change"}`;
    methods it does not list are refused. A read-scoped token may only use safe methods."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view) -> bool:
        decl = getattr(view, "permissions", None)
        if not isinstance(decl, dict):
            return False
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        needed = decl.get(method) or decl.get("*")
        if needed is None:
            return False
        if needed == PUBLIC:
            return True
        auth = request.auth
        if isinstance(auth, ApiToken) and auth.scope == TokenScope.READ and (
            request.method not in SAFE_METHODS
        ):
            self.message = "This API token is read-only."
            return False
        if not request.user or not request.user.is_authenticated:
            return False
        if auth is None:
            # Session use of the API obeys the same MFA rules as the UI.
            from ..auth import pending_security_step

            if pending_security_step(request._request):
                self.message = "Finish signing in (password change or MFA) first."
                return False
        return has_capability(request.user, needed)


class DeclaredMethodsMixin:
    """A signed-in caller using a method the view lacks gets 405, not a misleading 403.

    DRF checks permissions before it looks for a handler, so without this a DELETE on a
    read-only resource would be refused as forbidden. Anonymous requests still get 401
    first, so nothing about the route is revealed to them."""

    def check_permissions(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            method = request.method.lower()
            if method not in self.http_method_names or not hasattr(self, method):
                raise exceptions.MethodNotAllowed(request.method)
        super().check_permissions(request)
