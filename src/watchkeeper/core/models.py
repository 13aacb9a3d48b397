"""Core tables: tenants (clients) and their sites and contacts, users and roles, API tokens,
the audit log, the event outbox, webhooks and process heartbeats.

Every tenant-owned model declares `tenant_path`, the lookup from the row to its Client, and
is read through `watchkeeper.core.tenancy.scoped()`; nothing filters by client by hand.
"""

from __future__ import annotations

import uuid
from zoneinfo import available_timezones

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils.timezone import now

from .choices import AuditAction, DeliveryStatus, Role, TokenScope


def default_business_hours() -> dict:
    """Mon-Fri 08:00-18:00; keys are ISO weekdays (1 = Monday)."""
    return {str(day): [["08:00", "18:00"]] for day in range(1, 6)}


TIMEZONE_CHOICES = sorted((tz, tz) for tz in available_timezones())


class Client(models.Model):
    """A client organisation of the MSP: the tenant every other row belongs to."""

    tenant_path = "id"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", choices=TIMEZONE_CHOICES)
    business_hours = models.JSONField(default=default_business_hours, blank=True)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)
    probe_networks = models.JSONField(
        default=list, blank=True,
        help_text="Networks (CIDR) the server may probe for this client: network checks and "
                  "discovery connect only to addresses inside them (core/netguard.py).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A physical or logical location of a client (office, datacentre, cloud tenant)."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    timezone = models.CharField(max_length=64, blank=True, choices=TIMEZONE_CHOICES,
                                help_text="Empty: the client's time zone.")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["client__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="site_unique_name_per_client")
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """A person at a client: requester of tickets, recipient of reports and notices."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contacts")
    site = models.ForeignKey(Site, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    title = models.CharField(max_length=200, blank=True)
    is_primary = models.BooleanField(default=False)
    # Counted by per-user managed-services contracts (helpdesk billing) until an identity
    # directory supplies the users.
    is_user = models.BooleanField(default=False, help_text="Counts as a user for per-user "
                                                           "contracts.")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["client__name", "name"]
        indexes = [models.Index(fields=["email"], name="contact_email_idx")]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("role", Role.OWNER)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: MSP staff (by role) or a client's portal user."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.TECHNICIAN)
    # Client users belong to exactly one client; technicians see only assigned clients.
    client = models.ForeignKey(Client, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="portal_users")
    assigned_clients = models.ManyToManyField(Client, blank=True, related_name="technicians")
    is_active = models.BooleanField(default=True)
    must_change_password = models.BooleanField(default=False)
    timezone = models.CharField(max_length=64, default="UTC", choices=TIMEZONE_CHOICES)
    # TOTP seed, encrypted with the master key (see core.crypto); empty until enrolled.
    totp_secret_enc = models.TextField(blank=True)
    mfa_enabled_at = models.DateTimeField(null=True, blank=True)
    # Time step of the last TOTP code accepted, so a code cannot be used twice (RFC 6238 5.2).
    totp_last_step = models.BigIntegerField(null=True, blank=True)
    failed_logins = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role="client_user") | models.Q(client__isnull=False),
                name="user_client_user_has_client",
            )
        ]

    def __str__(self) -> str:
        return self.name or self.email

    @property
    def is_staff(self) -> bool:  # Django's admin site is not installed; kept for libraries.
        return False

    @property
    def mfa_enabled(self) -> bool:
        return self.mfa_enabled_at is not None

    @property
    def display_name(self) -> str:
        return self.name or self.email


class RolePolicy(models.Model):
    """Per-role settings an owner can change (today: whether MFA is required)."""

    role = models.CharField(max_length=20, choices=Role.choices, unique=True)
    mfa_required = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return self.get_role_display()


class RecoveryCode(models.Model):
    """A one-time MFA recovery code, stored only as a hash."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=128)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "used_at"], name="recovery_user_used_idx")]


class LoginAttempt(models.Model):
    """One sign-in attempt; the per-address rate limit counts recent failures here."""

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    success = models.BooleanField(default=False)
    at = models.DateTimeField(default=now)

    class Meta:
        indexes = [models.Index(fields=["ip", "at"], name="login_attempt_ip_at_idx"),
                   models.Index(fields=["email", "at"], name="login_attempt_email_at_idx")]


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the prefix finds it quickly."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The creator's role when the token was made: a token works only while its owner still
    # has that role, so a demotion can never leave a token with the old role's reach.
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        current = now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > current)


class SecurityPolicy(models.Model):
    """Settings of the whole installation that only an owner changes (one row, pk=1)."""

    token_max_days = models.PositiveIntegerField(
        default=90, help_text="Longest lifetime of a new API token, in days (1-3650).")
    probe_networks = models.JSONField(
        default=list, blank=True,
        help_text="Networks (CIDR) probes without a client may reach (core/netguard.py).")
    updated_at = models.DateTimeField(default=now)

    @classmethod
    def current(cls) -> SecurityPolicy:
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class UserSession(models.Model):
    """A signed-in browser session, so admins can see (and end) a user's sessions."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    session_key = models.CharField(max_length=64, unique=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class KnownDevice(models.Model):
    """A browser that has signed in to an account before (a signed cookie names it). An
    account lock applies only to devices and addresses it does not know."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="known_devices")
    device_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=now)
    last_seen_at = models.DateTimeField(default=now)
    last_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "device_hash"],
                                               name="known_device_user_hash_uniq")]


class AuditEntry(models.Model):
    """One write or security event: who, when, from where, what, and the changed fields.

    Rows are only ever inserted (see core.audit); no view, API or action updates them.
    """

    tenant_path = "client"

    at = models.DateTimeField(default=now, db_index=True)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_label = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=254, blank=True)
    client = models.ForeignKey(Client, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_idx"),
            models.Index(fields=["client", "at"], name="audit_client_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type} {self.object_repr}"


class Event(models.Model):
    """An outbox row: written in the same transaction as the change it announces."""

    tenant_path = "client"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seq = models.BigIntegerField(null=True, blank=True, editable=False)
    kind = models.CharField(max_length=100, db_index=True)
    # The schema version of the kind's payload when it was emitted (core.catalogue);
    # 0: stored before its kind was declared.
    version = models.PositiveSmallIntegerField(default=0)
    client = models.ForeignKey(Client, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class EventDelivery(models.Model):
    """Delivery of one event to one handler: retried with backoff, dead-lettered at last."""

    tenant_path = "event__client"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    handler = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=now)
    # A worker claims a row by moving locked_until forward with a conditional UPDATE.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-next_attempt_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "handler"], name="delivery_event_handler")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")]


class WebhookEndpoint(models.Model):
    """An outgoing webhook: events of the chosen kinds are POSTed, HMAC-signed, to `url`.

    An endpoint with no client receives events of every client (MSP-wide integrations).
    """

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="webhooks")
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=500)
    secret_enc = models.TextField()
    event_kinds = models.JSONField(default=list, blank=True,
                                   help_text="Event kinds to send; empty: all.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str) -> bool:
        return not self.event_kinds or kind in self.event_kinds


class WebhookDelivery(models.Model):
    """One HTTP attempt to deliver an event to a webhook endpoint: the delivery log."""

    tenant_path = "endpoint__client"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE,
                                 related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    attempt = models.PositiveIntegerField()
    at = models.DateTimeField(default=now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    success = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["endpoint", "at"], name="webhook_delivery_idx")]


class ProcessHeartbeat(models.Model):
    """Last sign of life of a worker, scheduler or poller process (read by /readyz)."""

    name = models.CharField(max_length=200, unique=True)
    role = models.CharField(max_length=20)
    last_seen = models.DateTimeField(default=now)
    started_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return self.name


class ScheduledJob(models.Model):
    """A periodic job; the scheduler claims a due one with a compare-and-set on next_run_at,
    so two schedulers never both enqueue it."""

    name = models.CharField(max_length=100, unique=True)
    next_run_at = models.DateTimeField(default=now, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


