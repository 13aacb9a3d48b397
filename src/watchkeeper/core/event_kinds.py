"""The events of the core app (its `events.py` is the outbox itself, so its declarations
live here). See core.catalogue and docs/development.md, 'Events'."""

from __future__ import annotations

from .catalogue import EventData, declare


@declare("webhook.test")
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
