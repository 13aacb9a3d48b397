"""Issue 18's account rules: who may mint a token and for how long, what ends a token, the
lockout an outsider cannot turn against the owner, and the headers on every response."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from watchkeeper.core import accounts
from watchkeeper.core.auth import SESSION_AUTH_AT
from watchkeeper.core.choices import Role, TokenScope
from watchkeeper.core.middleware import CONTENT_SECURITY_POLICY
from watchkeeper.core.models import ApiToken, Event, SecurityPolicy, UserSession

PASSWORD = "correct horse battery staple 7"


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _token_body(days: int = 30, **extra) -> dict:
    return {"name": "ci", "scope": "read",
            "expires_at": (timezone.now() + timedelta(days=days)).isoformat(), **extra}


@pytest.fixture
def person(db):
    user, _ = accounts.create_user(actor="test", email="pat@msp.test", role=Role.TECHNICIAN)
    user.set_password(PASSWORD)
    user.must_change_password = False
    user.save()
    return user


def login(client, email, password, **extra):
    return client.post(reverse("login"), {"email": email, "password": password}, **extra)


# --- minting tokens -------------------------------------------------------------------

def test_a_token_cannot_mint_a_token_even_a_write_one(client, person):
    _, raw = accounts.create_token(actor=person, user=person, name="w", scope=TokenScope.WRITE)
    response = client.post("/api/v1/tokens/", _token_body(), content_type="application/json",
                           **bearer(raw))
    assert response.status_code == 403
    assert "signed-in session" in response.json()["detail"]
    assert ApiToken.objects.filter(user=person).count() == 1


def test_minting_needs_a_recent_sign_in_or_confirmation(client, as_user, person, settings):
    as_user(person)
    session = client.session
    session[SESSION_AUTH_AT] -= (settings.REAUTH_MINUTES + 1) * 60  # signed in long ago
    session.save()
    # The API refuses, and says how to confirm
    response = client.post("/api/v1/tokens/", _token_body(), content_type="application/json")
    assert response.status_code == 403 and "Confirm" in response.json()["detail"]
    # The page shows the confirm step instead of the form, and refuses a direct post
    assert "Confirm it" in client.get(reverse("tokens")).content.decode()
    response = client.post(reverse("tokens"), {"name": "x", "scope": "read", "expires_in": 30})
    assert response.status_code == 400 and not ApiToken.objects.filter(user=person).exists()
    # A wrong password does not confirm
    response = client.post(reverse("tokens"), {"step": "confirm", "password": "nope"})
    assert response.status_code == 400
    # The right one does, and then a token can be made
    client.post(reverse("tokens"), {"step": "confirm", "password": PASSWORD})
    response = client.post("/api/v1/tokens/", _token_body(), content_type="application/json")
    assert response.status_code == 201


def test_expiry_is_required_and_capped_by_the_owners_limit(client, as_user, person, owner):
    as_user(person)
    body = _token_body()
    body.pop("expires_at")
    response = client.post("/api/v1/tokens/", body, content_type="application/json")
    assert response.status_code == 400 and "expires_at" in response.json()["errors"]
    # The owner lowers the limit to 10 days; 30 is refused, 10 accepted
    accounts.set_token_max_days(actor=owner, days=10)
    response = client.post("/api/v1/tokens/", _token_body(30), content_type="application/json")
    assert response.status_code == 400
    assert "10 days" in response.json()["errors"]["expires_at"][0]
    assert client.post("/api/v1/tokens/", _token_body(10),
                       content_type="application/json").status_code == 201
    # Only an owner sets the limit
    with pytest.raises(accounts.PermissionDenied):
        accounts.set_token_max_days(actor=person, days=3650)
    assert SecurityPolicy.current().token_max_days == 10


def test_a_read_only_role_gets_read_tokens_only(db):
    viewer, _ = accounts.create_user(actor="test", email="ro@msp.test", role=Role.READONLY)
    with pytest.raises(accounts.ValidationError):
        accounts.create_token(actor=viewer, user=viewer, name="x", scope=TokenScope.WRITE)


# --- what ends a token ------------------------------------------------------------------

def test_a_role_change_revokes_tokens_and_a_stale_role_never_authenticates(client, person,
                                                                          owner):
    token, raw = accounts.create_token(actor=person, user=person, name="t",
                                       scope=TokenScope.WRITE)
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 200
    accounts.update_user(actor=owner, user=person, role=Role.DISPATCHER)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 401
    # Even a token whose revocation was missed stops at a role mismatch
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    response = client.get("/api/v1/me/", **bearer(raw))
    assert response.status_code == 401 and "role" in response.json()["detail"]


def test_an_admin_reset_revokes_tokens_and_ends_sessions(client, person, admin_user):
    _, raw = accounts.create_token(actor=person, user=person, name="t", scope=TokenScope.READ)
    assert login(client, person.email, PASSWORD).status_code == 302
    assert UserSession.objects.filter(user=person, ended_at__isnull=True).count() == 1
    accounts.reset_password(actor=admin_user, user=person)
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 401
    assert not accounts.active_sessions(person).exists()
    assert client.get(reverse("dashboard")).status_code == 302  # signed out


@pytest.mark.parametrize("choice, works", [("revoke", False), ("keep", True)])
def test_password_change_shows_the_choice_and_does_what_was_chosen(client, as_user, person,
                                                                  choice, works):
    _, raw = accounts.create_token(actor=person, user=person, name="t", scope=TokenScope.READ)
    as_user(person)
    page = client.get(reverse("password_change")).content.decode()
    assert "Your 1 active API token" in page and "Keep them working" in page
    new = "another long passphrase 42"
    response = client.post(reverse("password_change"), {
        "old_password": PASSWORD, "new_password": new, "new_password2": new,
        "tokens": choice})
    assert response.status_code == 302
    assert (client.get("/api/v1/me/", **bearer(raw)).status_code == 200) is works


def test_admins_see_a_users_active_tokens_and_sessions(client, as_user, person, admin_user):
    accounts.create_token(actor=person, user=person, name="backup script",
                          scope=TokenScope.READ)
    revoked, _ = accounts.create_token(actor=person, user=person, name="old one",
                                       scope=TokenScope.READ)
    accounts.revoke_token(actor=person, token=revoked)
    login(client, person.email, PASSWORD, HTTP_USER_AGENT="Firefox test")
    client.cookies.clear()
    as_user(admin_user)
    page = client.get(reverse("user_edit", args=[person.pk])).content.decode()
    assert "backup script" in page and "old one" not in page
    assert "Firefox test" in page


# --- lockout ------------------------------------------------------------------------------

def test_an_outsider_cannot_lock_the_owner_out_of_a_known_device(client, person, settings):
    settings.LOCKOUT_THRESHOLD = 3
    settings.LOGIN_DELAY_AFTER = 3
    # The owner has signed in from this browser before
    assert login(client, person.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    # An outsider (another browser, another address) fails until the account locks
    from django.test import Client
    outsider = Client()
    with freeze_time() as frozen:
        for _ in range(5):
            login(outsider, person.email, "guess", REMOTE_ADDR="203.0.113.50")
            frozen.tick(120)
        person.refresh_from_db()
        assert person.locked_until is not None
        # The outsider is refused even with the right password
        response = login(outsider, person.email, PASSWORD, REMOTE_ADDR="203.0.113.50")
        assert response.status_code in (400, 429)
        # The owner's known browser still signs in, from any address
        response = login(client, person.email, PASSWORD, REMOTE_ADDR="198.51.100.1")
        assert response.status_code == 302


def test_failures_slow_down_progressively_per_account_and_address(client, person, settings):
    settings.LOCKOUT_THRESHOLD = 100
    settings.LOGIN_DELAY_AFTER = 2
    with freeze_time() as frozen:
        login(client, person.email, "guess 1", REMOTE_ADDR="203.0.113.7")
        login(client, person.email, "guess 2", REMOTE_ADDR="203.0.113.7")
        # Past the threshold, the next try must wait 1 s, then 2 s, then 4 s ...
        response = login(client, person.email, "guess 3", REMOTE_ADDR="203.0.113.7")
        assert response.status_code == 429 and response["Retry-After"] == "1"
        frozen.tick(1)
        login(client, person.email, "guess 3", REMOTE_ADDR="203.0.113.7")
        response = login(client, person.email, PASSWORD, REMOTE_ADDR="203.0.113.7")
        assert response.status_code == 429 and response["Retry-After"] == "2"
        # Another address is slowed too: the account itself is
        response = login(client, person.email, PASSWORD, REMOTE_ADDR="198.51.100.9")
        assert response.status_code == 429
        frozen.tick(2)
        assert login(client, person.email, PASSWORD,
                     REMOTE_ADDR="198.51.100.9").status_code == 302


def test_repeated_failures_alert_the_owner(client, person, settings):
    settings.LOGIN_ALERT_AFTER = 3
    settings.LOGIN_DELAY_AFTER = 100
    for _ in range(3):
        login(client, person.email, "guess", REMOTE_ADDR="203.0.113.8")
    alerts = Event.objects.filter(kind="user.sign_in_alert")
    assert alerts.count() == 1
    assert alerts.get().payload["id"] == person.pk and alerts.get().payload["failures"] == 3


def test_the_alert_mail_reaches_the_account_owner(person, settings, monkeypatch):
    sent = []

    class FakeSMTP:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def send_message(self, msg, **kwargs):
            sent.append(msg)

    settings.SMTP_HOST = "mail.test"
    monkeypatch.setattr("smtplib.SMTP", FakeSMTP)
    from watchkeeper.core import handlers
    from watchkeeper.core.event_kinds import UserSignInAlert

    event = UserSignInAlert(id=person.pk, failures=5, ip="203.0.113.8", locked_until=None)
    handlers.sign_in_alert_mail(event, "core.sign_in_alert_mail")
    assert sent and sent[0]["To"] == person.email
    assert "203.0.113.8" in sent[0].get_content()


# --- headers --------------------------------------------------------------------------------

def test_signed_in_pages_and_token_responses_are_not_stored(client, as_user, person):
    _, raw = accounts.create_token(actor=person, user=person, name="t", scope=TokenScope.READ)
    assert client.get("/api/v1/me/", **bearer(raw))["Cache-Control"] == "no-store"
    as_user(person)
    response = client.get(reverse("dashboard"))
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_no_template_carries_inline_script_or_handlers():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "watchkeeper"
    offenders = []
    for path in root.rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text):
            offenders.append(f"{path}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{path}: inline event handler")
        if re.search(r'\sstyle="', text) or "<style" in text:
            offenders.append(f"{path}: inline style")
        if "hx-on" in text or re.search(r'hx-trigger="[^"]*\[', text):
            offenders.append(f"{path}: htmx expression (needs eval)")
    assert offenders == []


