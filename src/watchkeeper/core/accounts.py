"""Writes about people: users, roles, sign-in, MFA and API tokens.

Every function here is an action (see core/actions.py): one transaction with its audit row
and its outbox event. Views, the API and the CLI call these and never save a User, a
RecoveryCode or an ApiToken themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import pyotp
from django.conf import settings
from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import audit, crypto, events
from . import event_kinds as ek
from .api.auth import TOKEN_PREFIX, hash_token
from .auth import SESSION_AUTH_AT, SESSION_MFA_VERIFIED
from .choices import AuditAction, Role, TokenScope
from .models import (
    ApiToken,
    Client,
    KnownDevice,
    LoginAttempt,
    RecoveryCode,
    RolePolicy,
    SecurityPolicy,
    User,
    UserSession,
)

TOTP_PURPOSE = "totp"
TOTP_ISSUER = "Watchkeeper"
RECOVERY_CODE_COUNT = 10
IP_WINDOW = timedelta(minutes=15)
PRIVILEGED_ROLES = frozenset({Role.OWNER, Role.ADMIN})

# One message for a wrong password, an unknown address and a locked account, so the form
# never tells an attacker which of the three it was.
LOGIN_REFUSED = ("Sign-in failed: the email or password is wrong, or the account is "
                 "temporarily locked after too many failed attempts. Try again later or "
                 "ask an administrator.")
IP_LIMITED = ("Too many failed sign-ins from your network address. Wait 15 minutes and "
              "try again.")
SLOW_DOWN = ("Too many failed sign-ins: wait {seconds} seconds before the next attempt. "
             "Signing in from a device you used before is not slowed down.")
KNOWN_ADDRESS_DAYS = 90  # a successful sign-in from an address makes it known this long


class LoginRefused(Exception):
    """Sign-in refused; `str(exc)` is safe to show to the person signing in."""


# --- helpers ----------------------------------------------------------------------------

def _is_person(actor) -> bool:
    return isinstance(actor, User) and actor.is_authenticated


def _user_changes(before: dict, after: dict) -> dict:
    return audit.diff(before, after)


def _user_state(user: User) -> dict:
    data = audit.snapshot(user)
    data.pop("last_login", None)
    data.pop("failed_logins", None)
    data.pop("locked_until", None)
    data.pop("totp_last_step", None)
    data["assigned_clients"] = sorted(user.assigned_clients.values_list("id", flat=True)) \
        if user.pk else []
    return data


def _check_role_grant(actor, role: str, target: User | None = None) -> None:
    """Only an owner may make someone an owner or change an owner's account."""
    if not _is_person(actor) or actor.role == Role.OWNER:
        return
    if role == Role.OWNER or (target is not None and target.role == Role.OWNER):
        raise PermissionDenied("Only an owner can grant the owner role or change an owner.")


def _validate_membership(role: str, client: Client | None,
                         assigned: Iterable[Client]) -> None:
    errors = {}
    if role not in Role.values:
        errors["role"] = f"Unknown role {role!r}."
    if role == Role.CLIENT_USER and client is None:
        errors["client"] = "A client user must belong to a client."
    if role != Role.CLIENT_USER and client is not None:
        errors["client"] = "Only client users belong to a client."
    if role != Role.TECHNICIAN and list(assigned):
        errors["assigned_clients"] = "Only technicians are assigned to clients."
    if errors:
        raise ValidationError(errors)


def _last_active_owner(user: User) -> bool:
    return (user.role == Role.OWNER and user.is_active and not
            User.objects.filter(role=Role.OWNER, is_active=True).exclude(pk=user.pk).exists())


def generate_password() -> str:
    """A one-time password that passes the validators: 4 groups of 5 unambiguous characters."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


# --- users ------------------------------------------------------------------------------

def create_user(*, actor, email: str, role: str, name: str = "", client: Client | None = None,
                assigned_clients: Iterable[Client] = (), timezone_name: str = "UTC",
                ) -> tuple[User, str]:
    """Create a user with a one-time password they must change at first sign-in."""
    email = User.objects.normalize_email(email.strip()).lower()
    assigned = list(assigned_clients)
    _check_role_grant(actor, role)
    _validate_membership(role, client, assigned)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A user with this email already exists."})
    password = generate_password()
    with transaction.atomic():
        user = User(email=email, role=role, name=name, client=client,
                    must_change_password=True, timezone=timezone_name)
        user.set_password(password)
        user.full_clean()
        user.save()
        if assigned:
            user.assigned_clients.set(assigned)
        after = _user_state(user)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=user, client_id=user.client_id,
                     changes={k: [None, v] for k, v in after.items() if v not in (None, "", [])})
        events.emit(ek.UserCreated.of(user), client=user.client_id)
    return user, password


_UPDATABLE = {"role", "name", "client", "is_active", "timezone"}


def update_user(*, actor, user: User, assigned_clients: Iterable[Client] | None = None,
                **fields) -> User:
    """Change role, name, client, time zone, active flag and/or assigned clients."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise TypeError(f"update_user cannot change {sorted(unknown)}")
    role = fields.get("role", user.role)
    _check_role_grant(actor, role, target=user)
    client = fields.get("client", user.client)
    if role != Role.CLIENT_USER and "role" in fields and "client" not in fields:
        client = fields["client"] = None  # leaving the client-user role leaves the client
    if assigned_clients is None:
        assigned = list(user.assigned_clients.all()) if role == Role.TECHNICIAN else []
        if role != Role.TECHNICIAN:
            assigned_clients = []
    else:
        assigned = list(assigned_clients)
    _validate_membership(role, client, assigned)
    demotes_owner = role != Role.OWNER or fields.get("is_active", True) is False
    if demotes_owner and _last_active_owner(user):
        raise ValidationError("This is the last active owner; make someone else owner first.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = _user_state(user)
        for name, value in fields.items():
            setattr(user, name, value)
        user.full_clean(exclude=["password"])
        if assigned_clients is not None:
            user.assigned_clients.set(assigned)
        after = _user_state(user)
        changes = _user_changes(before, after)
        if not changes:
            return user
        user.save()
        user.__dict__.pop("_wk_client_ids", None)
        action = AuditAction.UPDATE
        audit.record(actor=actor, action=action, obj=user, client_id=user.client_id,
                     changes=changes)
        if "role" in changes:
            # A token never keeps the reach of a role its owner no longer has.
            revoke_all_tokens(actor=actor, user=user, reason="role changed")
        kind = ek.UserDeactivated if changes.get("is_active") == [True, False] \
            else ek.UserChanged
        events.emit(kind.of(user, changed=changes), client=user.client_id)
    return user


def deactivate_user(*, actor, user: User) -> User:
    """Disable sign-in; sessions and API tokens of an inactive user stop working at once."""
    if _is_person(actor) and actor.pk == user.pk:
        raise ValidationError("You cannot deactivate your own account.")
    return update_user(actor=actor, user=user, is_active=False)


def update_profile(*, actor: User, name: str, timezone_name: str) -> User:
    return update_user(actor=actor, user=actor, name=name, timezone=timezone_name)


def change_password(*, actor, user: User, old_password: str | None, new_password: str,
                    keep_tokens: bool = False) -> User:
    """Change one's own password (old one required unless `old_password` is None for the
    CLI/admin path); validators apply; clears the forced-change flag. The user's API tokens
    are revoked unless they chose to keep them (`keep_tokens`, shown on the form)."""
    if old_password is not None and not user.check_password(old_password):
        raise ValidationError({"old_password": "The current password is wrong."})
    if old_password is not None and old_password == new_password:
        raise ValidationError({"new_password": "Choose a password different from the current."})
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    with transaction.atomic():
        user.set_password(new_password)
        forced = user.must_change_password
        user.must_change_password = False
        user.save(update_fields=["password", "must_change_password"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=user, client_id=user.client_id,
                     changes={"password": ["••••", "••••"],
                              **({"must_change_password": [True, False]} if forced else {})})
        events.emit(ek.UserPasswordChanged.of(user), client=user.client_id)
        if not keep_tokens:
            revoke_all_tokens(actor=actor, user=user, reason="password changed")
    return user


def reset_password(*, actor, user: User) -> str:
    """Give a user a new one-time password (forgotten password); they must change it at
    next sign-in. Their sessions end, because the session hash follows the password."""
    _check_role_grant(actor, user.role, target=user)
    if _is_person(actor) and actor.pk == user.pk:
        raise ValidationError("Change your own password on your profile instead.")
    password = generate_password()
    with transaction.atomic():
        user.set_password(password)
        user.must_change_password = True
        user.failed_logins, user.locked_until = 0, None
        user.save(update_fields=["password", "must_change_password", "failed_logins",
                                 "locked_until"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=user, client_id=user.client_id,
                     changes={"password": ["••••", "•••• (one-time)"],
                              "must_change_password": [False, True]})
        events.emit(ek.UserPasswordReset.of(user), client=user.client_id)
        # A reset means the password may be known to someone else: whatever they minted with
        # it goes too (sessions end because the session hash follows the password).
        revoke_all_tokens(actor=actor, user=user, reason="password reset")
        end_sessions(user=user)
    return password


def set_role_policy(*, actor, role: str, mfa_required: bool) -> RolePolicy:
    """Turn the MFA requirement of a role on or off; the audit log keeps the history."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if _is_person(actor) and actor.role != Role.OWNER and role in PRIVILEGED_ROLES:
        # An admin must not be able to weaken the sign-in of the roles that manage users.
        raise PermissionDenied("Only an owner can change the MFA policy of owners and admins.")
    from .auth import mfa_required as current_requirement

    with transaction.atomic():
        policy = RolePolicy.objects.select_for_update().filter(role=role).first()
        old = policy.mfa_required if policy else None
        if policy is None:
            old_effective = current_requirement(User(role=role))
            policy = RolePolicy(role=role)
        else:
            old_effective = old
        if policy.pk and old == mfa_required:
            return policy
        policy.mfa_required = mfa_required
        policy.updated_at = timezone.now()
        policy.save()
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=policy,
                     changes={"mfa_required": [old_effective, mfa_required]})
        events.emit(ek.RolePolicyChanged(role=role, mfa_required=mfa_required))
    return policy


def unlock_user(*, actor, user: User) -> User:
    """Lift a lockout before it expires (the person proved who they are another way)."""
    with transaction.atomic():
        was = user.locked_until
        User.objects.filter(pk=user.pk).update(locked_until=None, failed_logins=0)
        user.locked_until, user.failed_logins = None, 0
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=user, client_id=user.client_id,
                     changes={"locked_until": [was.isoformat() if was else None, None]})
        events.emit(ek.UserUnlocked.of(user), client=user.client_id)
    return user


# --- sign-in ----------------------------------------------------------------------------

# A real hash to check against when the address is unknown, so both paths cost the same.
_DUMMY_HASH: str | None = None


def _dummy_check(password: str) -> None:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = make_password("watchkeeper-dummy-password")
    from django.contrib.auth.hashers import check_password

    check_password(password, _DUMMY_HASH)


def ip_limited(ip: str | None) -> bool:
    if not ip:
        return False
    since = timezone.now() - IP_WINDOW
    failures = LoginAttempt.objects.filter(ip=ip, success=False, at__gte=since).count()
    return failures >= settings.LOGIN_IP_LIMIT


def device_hash(device: str | None) -> str | None:
    """The stored form of a device cookie's random id (the cookie itself is signed)."""
    return hashlib.sha256(f"wk-device:{device}".encode()).hexdigest() if device else None


def recognised(user: User, *, device: str | None, ip: str | None) -> bool:
    """Has this account signed in from this browser (device cookie) or address before?"""
    digest = device_hash(device)
    if digest and KnownDevice.objects.filter(user=user, device_hash=digest).exists():
        return True
    if ip:
        since = timezone.now() - timedelta(days=KNOWN_ADDRESS_DAYS)
        return LoginAttempt.objects.filter(email=user.email, ip=ip, success=True,
                                           at__gte=since).exists()
    return False


def _delay(failures: int, last_failure) -> int:
    """Seconds still to wait: 2**(failures past LOGIN_DELAY_AFTER), capped."""
    over = failures - settings.LOGIN_DELAY_AFTER
    if over < 0 or last_failure is None:
        return 0
    wait = min(2 ** min(over, 30), settings.LOGIN_DELAY_MAX_SECONDS)
    left = (last_failure + timedelta(seconds=wait) - timezone.now()).total_seconds()
    return max(0, int(left + 0.999))


def retry_after(*, user: User | None, ip: str | None, known: bool) -> int:
    """Seconds before this source may try again (0: now): per address and per account,
    for devices and addresses the account does not know (`known` skips both)."""
    if known:
        return 0
    waits = [0]
    if ip:
        recent = LoginAttempt.objects.filter(ip=ip, success=False,
                                             at__gte=timezone.now() - IP_WINDOW)
        last = recent.order_by("-at").values_list("at", flat=True).first()
        waits.append(_delay(recent.count(), last))
    if user is not None:
        last = LoginAttempt.objects.filter(email=user.email, success=False).order_by(
            "-at").values_list("at", flat=True).first()
        waits.append(_delay(user.failed_logins, last))
    return max(waits)


def is_locked(user: User, *, known: bool = False) -> bool:
    """Locked for this source: a lock never applies to a device or address the account has
    signed in from before, so an outsider cannot lock the owner out."""
    return not known and user.locked_until is not None and user.locked_until > timezone.now()


def record_login_failure(*, email: str, user: User | None, ip: str | None,
                         reason: str, known: bool = False) -> None:
    """Count a failed password or MFA code. Failures from unknown devices and addresses
    count toward the account's delay and lock; the owner is alerted at LOGIN_ALERT_AFTER."""
    with transaction.atomic():
        LoginAttempt.objects.create(email=email[:254], ip=ip, success=False)
        locked_now = alert_now = False
        if user is not None and reason not in ("locked", "slowed") and not known:
            User.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
            user.refresh_from_db(fields=["failed_logins", "locked_until"])
            alert_now = user.failed_logins == settings.LOGIN_ALERT_AFTER
            if user.failed_logins >= settings.LOCKOUT_THRESHOLD and not is_locked(user):
                until = timezone.now() + timedelta(minutes=settings.LOCKOUT_MINUTES)
                User.objects.filter(pk=user.pk).update(locked_until=until)
                user.locked_until, locked_now = until, True
        audit.record(actor=None, action=AuditAction.LOGIN_FAILED, ip=ip,
                     object_type="core.user", object_id=str(user.pk) if user else "",
                     object_repr=email[:254], client_id=user.client_id if user else None,
                     changes={"reason": reason})
        events.emit(ek.UserLoginFailed(email=email, reason=reason, ip=ip),
                    client=user.client_id if user else None)
        if locked_now:
            audit.record(actor=None, action=AuditAction.LOCKED, obj=user, ip=ip,
                         client_id=user.client_id,
                         changes={"locked_until": [None, user.locked_until.isoformat()]})
            events.emit(ek.UserLocked(id=user.pk, until=user.locked_until.isoformat()),
                        client=user.client_id)
        if alert_now or locked_now:
            # Mailed to the account's owner by core.handlers.sign_in_alert_mail.
            events.emit(ek.UserSignInAlert.of(user, ip=ip, locked=locked_now),
                        client=user.client_id)


class SlowDown(LoginRefused):
    def __init__(self, seconds: int):
        super().__init__(SLOW_DOWN.format(seconds=seconds))
        self.seconds = seconds


def check_credentials(*, email: str, password: str, ip: str | None,
                      device: str | None = None) -> User:
    """The password step. Returns the user or raises LoginRefused; records failures.
    `device` is the random id of the browser's signed device cookie, if it sent one."""
    email = (email or "").strip().lower()
    if ip_limited(ip):
        record_login_failure(email=email, user=None, ip=ip, reason="ip_limited")
        raise LoginRefused(IP_LIMITED)
    user = User.objects.filter(email__iexact=email).first() if email else None
    known = user is not None and recognised(user, device=device, ip=ip)
    wait = retry_after(user=user, ip=ip, known=known)
    if wait:
        # Not hashed and not counted: a slowed-down guess costs the attacker time, not us.
        raise SlowDown(wait)
    if user is None:
        _dummy_check(password)
        record_login_failure(email=email, user=None, ip=ip, reason="unknown_email")
        raise LoginRefused(LOGIN_REFUSED)
    if is_locked(user, known=known):
        # Hash anyway so timing does not tell "locked" from "wrong password".
        _dummy_check(password)
        record_login_failure(email=email, user=user, ip=ip, reason="locked")
        raise LoginRefused(LOGIN_REFUSED)
    if not user.check_password(password) or not user.is_active:
        reason = "inactive" if user.is_active is False else "bad_password"
        record_login_failure(email=email, user=user, ip=ip, reason=reason, known=known)
        raise LoginRefused(LOGIN_REFUSED)
    return user


def sign_in(request, user: User, *, mfa_verified: bool, method: str = "password",
            device: str | None = None) -> str:
    """Complete sign-in: session, reset of the failure counter, the browser remembered as a
    known device of the account, audit and event. Returns the device id for the cookie."""
    import time

    device = device or secrets.token_urlsafe(24)
    with transaction.atomic():
        django_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_MFA_VERIFIED] = mfa_verified
        request.session[SESSION_AUTH_AT] = int(time.time())
        User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
        ip = getattr(request, "client_ip", None)
        LoginAttempt.objects.create(email=user.email, ip=ip, success=True)
        KnownDevice.objects.update_or_create(
            user=user, device_hash=device_hash(device),
            defaults={"last_seen_at": timezone.now(), "last_ip": ip})
        if request.session.session_key is None:
            request.session.save()
        UserSession.objects.update_or_create(
            session_key=request.session.session_key,
            defaults={"user": user, "ip": ip, "ended_at": None,
                      "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300]})
        audit.record(actor=user, action=AuditAction.LOGIN, obj=user, ip=ip,
                     client_id=user.client_id, changes={"method": method})
        events.emit(ek.UserLogin(id=user.pk, ip=ip), client=user.client_id)
    return device


def confirm_identity(request, *, password: str, code: str = "",
                     device: str | None = None) -> None:
    """The confirm-it's-you step of a signed-in session (before minting a token): the
    password, and a TOTP or recovery code when MFA is on. Failures count like sign-in's."""
    import time

    user = request.user
    ip = getattr(request, "client_ip", None)
    known = recognised(user, device=device, ip=ip)
    wait = retry_after(user=user, ip=ip, known=known)
    if wait:
        raise SlowDown(wait)
    ok = user.check_password(password)
    if ok and user.mfa_enabled:
        ok = verify_totp(user, code) or use_recovery_code(user, code)
    if not ok:
        record_login_failure(email=user.email, user=user, ip=ip, reason="bad_reauth",
                             known=known)
        raise LoginRefused("The password or code is wrong.")
    request.session[SESSION_AUTH_AT] = int(time.time())


def end_sessions(*, user: User, except_key: str | None = None) -> int:
    """End a user's browser sessions (all, or all but the current one)."""
    from django.contrib.sessions.models import Session

    rows = UserSession.objects.filter(user=user, ended_at__isnull=True)
    if except_key:
        rows = rows.exclude(session_key=except_key)
    keys = list(rows.values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    return rows.update(ended_at=timezone.now())


def active_sessions(user: User):
    """The user's sessions that can still be used (not ended, not expired)."""
    from django.contrib.sessions.models import Session

    live = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
    return UserSession.objects.filter(user=user, ended_at__isnull=True,
                                      session_key__in=live)


def sign_out(request) -> None:
    user = request.user
    if user.is_authenticated:
        with transaction.atomic():
            audit.record(actor=user, action=AuditAction.LOGOUT, obj=user,
                         client_id=user.client_id)
            events.emit(ek.UserLogout.of(user), client=user.client_id)
            UserSession.objects.filter(session_key=request.session.session_key).update(
                ended_at=timezone.now())
    django_logout(request)


# --- MFA --------------------------------------------------------------------------------

def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, at: datetime | None = None) -> int | None:
    """The time step whose code equals `code`, allowing one step of clock drift."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(at or timezone.now())
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(user: User, code: str) -> bool:
    """Accept a code once: the step is stored with a compare-and-set, so a replay within
    the same (or an earlier) step fails even when two requests race."""
    if not user.totp_secret_enc:
        return False
    step = _matching_step(crypto.decrypt(user.totp_secret_enc, TOTP_PURPOSE), code)
    if step is None:
        return False
    claimed = User.objects.filter(pk=user.pk).filter(
        Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step)
    ).update(totp_last_step=step)
    if claimed:
        user.totp_last_step = step
    return bool(claimed)


def _hash_recovery(user_id: int, code: str) -> str:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(f"wk-recovery:{user_id}:{normalized}".encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    """Replace a user's recovery codes. 16 base32 characters = 80 bits each, so a salted
    SHA-256 is enough to store them (no slow KDF needed against brute force)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    codes = ["-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
             for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=_hash_recovery(user.pk, c)) for c in codes])
    return codes


def enable_mfa(*, actor, user: User, secret: str, code: str) -> list[str]:
    """Confirm a pending TOTP secret with its first code; returns the recovery codes (shown
    once)."""
    step = _matching_step(secret, code)
    if step is None:
        raise ValidationError({"code": "That code is not valid for this key. Check the time on "
                                       "your device and try the current code."})
    with transaction.atomic():
        user.totp_secret_enc = crypto.encrypt(secret, TOTP_PURPOSE)
        user.mfa_enabled_at = timezone.now()
        user.totp_last_step = step
        user.save(update_fields=["totp_secret_enc", "mfa_enabled_at", "totp_last_step"])
        codes = _new_recovery_codes(user)
        audit.record(actor=actor, action=AuditAction.MFA, obj=user, client_id=user.client_id,
                     changes={"mfa": ["off", "totp"], "recovery_codes": [None, len(codes)]})
        events.emit(ek.UserMfaEnabled.of(user), client=user.client_id)
    return codes


def regenerate_recovery_codes(*, actor, user: User) -> list[str]:
    if not user.mfa_enabled:
        raise ValidationError("Set up MFA first.")
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        audit.record(actor=actor, action=AuditAction.MFA, obj=user, client_id=user.client_id,
                     changes={"recovery_codes": ["replaced", len(codes)]})
        events.emit(ek.UserRecoveryCodesRegenerated.of(user), client=user.client_id)
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Spend one recovery code; a code works exactly once."""
    digest = _hash_recovery(user.pk, code or "")
    candidate = RecoveryCode.objects.filter(user=user, code_hash=digest,
                                            used_at__isnull=True).first()
    if candidate is None:
        return False
    with transaction.atomic():
        spent = RecoveryCode.objects.filter(pk=candidate.pk, used_at__isnull=True).update(
            used_at=timezone.now())
        if not spent:
            return False
        left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        audit.record(actor=user, action=AuditAction.MFA, obj=user, client_id=user.client_id,
                     changes={"recovery_code_used": [None, True], "recovery_codes_left":
                              [left + 1, left]})
        events.emit(ek.UserRecoveryCodeUsed(id=user.pk, left=left), client=user.client_id)
    return True


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def reset_mfa(*, actor, user: User) -> User:
    """Remove a user's TOTP key and recovery codes (lost phone); they enrol again at next
    sign-in if their role requires MFA."""
    _check_role_grant(actor, user.role, target=user)
    with transaction.atomic():
        was = "totp" if user.mfa_enabled else "off"
        user.totp_secret_enc = ""
        user.mfa_enabled_at = None
        user.totp_last_step = None
        user.save(update_fields=["totp_secret_enc", "mfa_enabled_at", "totp_last_step"])
        RecoveryCode.objects.filter(user=user).delete()
        audit.record(actor=actor, action=AuditAction.MFA, obj=user, client_id=user.client_id,
                     changes={"mfa": [was, "off"]})
        events.emit(ek.UserMfaReset.of(user), client=user.client_id)
    return user


# --- API tokens -------------------------------------------------------------------------

def token_max_expiry() -> datetime:
    return timezone.now() + timedelta(days=SecurityPolicy.current().token_max_days)


def create_token(*, actor, user: User, name: str, scope: str,
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a personal API token; the raw value is returned once and never stored.

    Every token expires, at most SecurityPolicy.token_max_days ahead (set by an owner; None
    means that longest lifetime: the API and the page ask for it explicitly); it
    records its owner's role and stops working if that role changes; a read-only role gets
    read tokens only. Callers check that a person minting one re-authenticated recently.
    """
    if scope not in TokenScope.values:
        raise ValidationError({"scope": f"Scope must be one of {', '.join(TokenScope.values)}."})
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name that says where it is used."})
    if expires_at is None:
        expires_at = token_max_expiry()
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    limit = SecurityPolicy.current().token_max_days
    if expires_at > timezone.now() + timedelta(days=limit, minutes=5):
        raise ValidationError({"expires_at": f"Tokens expire within {limit} days at most "
                                             "(the owner's setting)."})
    if scope == TokenScope.WRITE and user.role == Role.READONLY:
        raise ValidationError({"scope": "A read-only role can only have read tokens."})
    if not user.is_active:
        raise ValidationError("Inactive users cannot have API tokens.")
    with transaction.atomic():
        # Hex only: the prefix and secret must not contain "_", the separator of the format.
        while True:
            prefix = secrets.token_hex(6)
            if not ApiToken.objects.filter(prefix=prefix).exists():
                break
        raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_hex(32)}"
        token = ApiToken(user=user, name=name[:100], prefix=prefix, token_hash=hash_token(raw),
                         scope=scope, expires_at=expires_at, role=user.role)
        token.full_clean()
        token.save()
        audit.record(actor=actor, action=AuditAction.TOKEN, obj=token, client_id=user.client_id,
                     changes={"created": [None, True], "user": [None, user.email],
                              "name": [None, token.name], "scope": [None, scope],
                              "prefix": [None, prefix],
                              "expires_at": [None, expires_at.isoformat() if expires_at
                                             else None]})
        events.emit(ek.TokenCreated.of(token), client=user.client_id)
    return token, raw


def revoke_token(*, actor, token: ApiToken) -> ApiToken:
    with transaction.atomic():
        when = timezone.now()
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=when)
        token.refresh_from_db()
        if not revoked:
            return token
        audit.record(actor=actor, action=AuditAction.TOKEN, obj=token,
                     client_id=token.user.client_id,
                     changes={"revoked_at": [None, when.isoformat()]})
        events.emit(ek.TokenRevoked.of(token), client=token.user.client_id)
    return token


def revoke_all_tokens(*, actor, user: User, reason: str) -> int:
    """Revoke every active token of a user (password change or reset, role change)."""
    with transaction.atomic():
        active = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True)
                      .values_list("pk", flat=True))
        if not active:
            return 0
        when = timezone.now()
        ApiToken.objects.filter(pk__in=active).update(revoked_at=when)
        audit.record(actor=actor, action=AuditAction.TOKEN, obj=user, client_id=user.client_id,
                     changes={"tokens_revoked": [len(active), 0], "reason": [None, reason]})
        events.emit(ek.TokensBulkRevoked.of(user, active, reason), client=user.client_id)
    return len(active)


def set_msp_probe_networks(*, actor, networks: list[str]) -> SecurityPolicy:
    """The networks probes without a client may reach (core/netguard.py); owners only."""
    from .netguard import normalize_networks

    if _is_person(actor) and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can change the MSP's probe networks.")
    try:
        networks = normalize_networks(networks)
    except ValueError as exc:
        raise ValidationError({"probe_networks": str(exc)}) from exc
    with transaction.atomic():
        policy = SecurityPolicy.current()
        old = list(policy.probe_networks or [])
        if SecurityPolicy.objects.filter(pk=1).exists() and old == networks:
            return policy
        policy.probe_networks, policy.updated_at = networks, timezone.now()
        policy.save()
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=policy,
                     changes={"probe_networks": [old, networks]})
        events.emit(ek.SecurityPolicyChanged.of(policy))
    return policy


def set_token_max_days(*, actor, days: int) -> SecurityPolicy:
    """The owner's limit on new tokens' lifetime (existing tokens keep their expiry)."""
    if _is_person(actor) and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can change the token lifetime limit.")
    if not 1 <= int(days) <= 3650:
        raise ValidationError({"token_max_days": "Between 1 and 3650 days."})
    with transaction.atomic():
        policy = SecurityPolicy.current()
        old = policy.token_max_days
        if policy.pk and SecurityPolicy.objects.filter(pk=1).exists() and old == days:
            return policy
        policy.token_max_days, policy.updated_at = int(days), timezone.now()
        policy.save()
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=policy,
                     changes={"token_max_days": [old, int(days)]})
        events.emit(ek.SecurityPolicyChanged.of(policy))
    return policy

