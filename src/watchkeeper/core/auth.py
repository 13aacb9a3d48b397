"""Sign-in state: which security step (password change, MFA set-up or MFA code) a signed-in
session still owes before it may use the product."""

from __future__ import annotations

from django.urls import reverse

from .permissions import MFA_REQUIRED_BY_DEFAULT

SESSION_MFA_VERIFIED = "wk_mfa_verified"
# When this session last proved who it is (password, and the MFA code where enabled):
# set at sign-in and by the confirm-it's-you page. Minting an API token needs it recent.
SESSION_AUTH_AT = "wk_auth_at"


def recently_authenticated(request) -> bool:
    import time

    from django.conf import settings

    at = request.session.get(SESSION_AUTH_AT) if hasattr(request, "session") else None
    return bool(at) and time.time() - at <= settings.REAUTH_MINUTES * 60


def mfa_required(user) -> bool:
    from .models import RolePolicy

    policy = RolePolicy.objects.filter(role=user.role).only("mfa_required").first()
    if policy is not None:
        return policy.mfa_required
    return user.role in MFA_REQUIRED_BY_DEFAULT


def pending_security_step(request) -> str | None:
    user = request.user
    if not user.is_authenticated:
        return None
    if user.must_change_password:
        return reverse("password_change")
    if user.mfa_enabled:
        if not request.session.get(SESSION_MFA_VERIFIED):
            return reverse("mfa_verify")
        return None
    if mfa_required(user):
        return reverse("mfa_setup")
    return None
