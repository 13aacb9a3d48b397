"""The events of the core app (its `events.py` is the outbox itself, so its declarations
live here). See core.catalogue and docs/development.md, 'Events'."""

from __future__ import annotations

from .catalogue import EventData, declare, declare_crud, shape


@declare("webhook.test", directed=True)
class WebhookTest(EventData):
    """A person sent a test event to one webhook endpoint (delivered to it alone)."""

    endpoint_id: int
    name: str
    message: str

    @classmethod
    def of(cls, endpoint) -> WebhookTest:
        return cls(endpoint_id=endpoint.pk, name=endpoint.name,
                   message="Test event sent from Watchkeeper.")


@declare("delivery.replayed")
class DeliveryReplayed(EventData):
    """A person put a dead-lettered delivery back in the queue."""

    id: int
    handler: str
    event_id: str
    event_kind: str

    @classmethod
    def of(cls, delivery) -> DeliveryReplayed:
        return cls(id=delivery.pk, handler=delivery.handler, event_id=str(delivery.event_id),
                   event_kind=delivery.event.kind)


# --- Clients, sites, contacts, webhooks: plain CRUD (core.actions.create_object & co.) --

ClientCreated, ClientChanged, ClientDeleted = declare_crud("core.Client", module=__name__)
SiteCreated, SiteChanged, SiteDeleted = declare_crud("core.Site", module=__name__)
ContactCreated, ContactChanged, ContactDeleted = declare_crud("core.Contact",
                                                              module=__name__)
WebhookCreated, WebhookChanged, WebhookDeleted = declare_crud("core.WebhookEndpoint",
                                                              module=__name__)


# --- Users, sign-in, MFA, tokens ---------------------------------------------------------

@shape
class _UserRef(EventData):
    id: int


@declare("user.created")
class UserCreated(EventData):
    """A user account was created."""

    id: int
    email: str
    role: str


@declare("user.changed")
class UserChanged(EventData):
    """A user's name, role, client or state changed; `changed` names the fields."""

    id: int
    changed: list[str]

    @classmethod
    def of(cls, user, *, changed) -> UserChanged:
        return cls(id=user.pk, changed=sorted(changed))


@declare("user.deactivated")
class UserDeactivated(UserChanged):
    """A user was deactivated (may no longer sign in); `changed` names the fields."""


@declare("user.password_changed")
class UserPasswordChanged(_UserRef):
    """A user changed their own password."""


@declare("user.password_reset")
class UserPasswordReset(_UserRef):
    """An administrator reset a user's password."""


@declare("user.unlocked")
class UserUnlocked(_UserRef):
    """An administrator lifted a user's sign-in lock."""


@declare("user.logout")
class UserLogout(_UserRef):
    """A user signed out."""


@declare("user.mfa_enabled")
class UserMfaEnabled(_UserRef):
    """A user enabled two-factor authentication (TOTP)."""


@declare("user.mfa_reset")
class UserMfaReset(_UserRef):
    """An administrator reset a user's two-factor authentication."""


@declare("user.recovery_codes_regenerated")
class UserRecoveryCodesRegenerated(_UserRef):
    """A user's MFA recovery codes were replaced by new ones."""


@declare("user.recovery_code_used")
class UserRecoveryCodeUsed(EventData):
    """A user signed in with an MFA recovery code; `left` remain."""

    id: int
    left: int


@declare("user.login")
class UserLogin(EventData):
    """A user signed in (password and, where required, second factor)."""

    id: int
    ip: str | None


@declare("user.login_failed")
class UserLoginFailed(EventData):
    """A sign-in failed (`reason`: bad password, unknown email, locked, rate limited...)."""

    email: str
    reason: str
    ip: str | None


@declare("user.locked")
class UserLocked(EventData):
    """Too many failed sign-ins: the user is locked out `until` (ISO 8601)."""

    id: int
    until: str


@declare("role_policy.changed")
class RolePolicyChanged(EventData):
    """Whether a role must use two-factor authentication changed."""

    role: str
    mfa_required: bool


@declare("token.created")
class TokenCreated(EventData):
    """A personal API token was created for a user."""

    id: int
    user_id: int
    scope: str


@declare("token.revoked")
class TokenRevoked(EventData):
    """A personal API token was revoked."""

    id: int
    user_id: int

    @classmethod
    def of(cls, token) -> TokenRevoked:
        return cls(id=token.pk, user_id=token.user_id)


@declare("user.sign_in_alert")
class UserSignInAlert(EventData):
    """An account had repeated failed sign-ins from unknown devices (mailed to its owner)."""

    id: int
    failures: int
    ip: str | None
    locked_until: str | None  # ISO 8601, when this alert comes with a lock

    @classmethod
    def of(cls, user, *, ip: str | None, locked: bool) -> UserSignInAlert:
        return cls(id=user.pk, failures=user.failed_logins, ip=ip,
                   locked_until=user.locked_until.isoformat() if locked else None)


@declare("security_policy.changed")
class SecurityPolicyChanged(EventData):
    """An owner changed an installation-wide security setting (the token lifetime limit)."""

    token_max_days: int

    @classmethod
    def of(cls, policy) -> SecurityPolicyChanged:
        return cls(token_max_days=policy.token_max_days)


@declare("token.bulk_revoked")
class TokensBulkRevoked(EventData):
    """All active API tokens of a user were revoked (password change or reset, role change)."""

    user_id: int
    ids: list[int]
    reason: str

    @classmethod
    def of(cls, user, ids: list[int], reason: str) -> TokensBulkRevoked:
        return cls(user_id=user.pk, ids=ids, reason=reason)
