"""Sign-in: password step, lockout per account and per address, forced password change,
sign-out, and the audit rows each of them leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from tests.factories import PASSWORD, make_user
from watchkeeper.core import accounts
from watchkeeper.core.auth import SESSION_MFA_VERIFIED
from watchkeeper.core.choices import AuditAction, Role
from watchkeeper.core.models import AuditEntry, Event, LoginAttempt, User

NEW_PASSWORD = "a quite different passphrase 42"


def post_login(client, email, password, **extra):
    return client.post(reverse("login"), {"email": email, "password": password}, **extra)


@pytest.fixture
def dispatcher(db):
    # A role that does not require MFA by default, with no MFA enrolled.
    return make_user("dispatch@msp.test", Role.DISPATCHER, mfa=False)


def test_login_page_allows_password_managers_and_paste(client, db):
    # Given the login page
    response = client.get(reverse("login"))
    # Then it is a plain form with autocomplete hints and nothing that blocks paste
    body = response.content.decode()
    assert response.status_code == 200
    assert 'autocomplete="username"' in body
    assert 'autocomplete="current-password"' in body
    assert "onpaste" not in body


def test_password_only_user_signs_in_and_login_is_audited(client, dispatcher):
    # When a user without MFA signs in with the right password
    response = post_login(client, dispatcher.email, PASSWORD)
    # Then the session is signed in and goes to the dashboard
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert client.get(reverse("profile")).status_code == 200
    # And the login is audited with the caller's address, with an event
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN)
    assert entry.actor == dispatcher and entry.ip == "127.0.0.1"
    assert Event.objects.filter(kind="user.login").exists()
    assert LoginAttempt.objects.filter(email=dispatcher.email, success=True).count() == 1


def test_next_parameter_is_followed_only_when_local(client, dispatcher):
    response = client.post(reverse("login") + "?next=/profile/",
                           {"email": dispatcher.email, "password": PASSWORD,
                            "next": "/profile/"})
    assert response["Location"] == "/profile/"
    client.post(reverse("logout"))
    response = client.post(reverse("login"), {"email": dispatcher.email, "password": PASSWORD,
                                              "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")


def test_wrong_password_is_refused_generically_and_audited(client, dispatcher):
    # When the password is wrong
    response = post_login(client, dispatcher.email, "wrong password!")
    # Then the form says so without telling which part was wrong
    assert response.status_code == 400
    assert accounts.LOGIN_REFUSED in response.content.decode()
    assert "_auth_user_id" not in client.session
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_FAILED)
    assert entry.changes == {"reason": "bad_password"}
    dispatcher.refresh_from_db()
    assert dispatcher.failed_logins == 1


def test_unknown_email_gets_the_same_message(client, db):
    response = post_login(client, "nobody@msp.test", "whatever password")
    assert response.status_code == 400
    assert accounts.LOGIN_REFUSED in response.content.decode()


def test_lockout_after_threshold_refuses_right_password_until_period_ends(client, dispatcher,
                                                                           settings):
    settings.LOCKOUT_THRESHOLD = 3
    settings.LOCKOUT_MINUTES = 15
    start = timezone.now()
    with freeze_time(start):
        # Given three wrong passwords
        for _ in range(3):
            post_login(client, dispatcher.email, "wrong password!")
        dispatcher.refresh_from_db()
        # Then the account is locked for the configured period, with an audit row
        assert dispatcher.locked_until == start + timedelta(minutes=15)
        assert AuditEntry.objects.filter(action=AuditAction.LOCKED,
                                         object_id=str(dispatcher.pk)).count() == 1
        assert Event.objects.filter(kind="user.locked").exists()
        # When the right password is given while locked
        response = post_login(client, dispatcher.email, PASSWORD)
        # Then it is refused with the same generic message
        assert response.status_code == 400
        assert accounts.LOGIN_REFUSED in response.content.decode()
        assert "_auth_user_id" not in client.session
    with freeze_time(start + timedelta(minutes=14)):
        assert post_login(client, dispatcher.email, PASSWORD).status_code == 400
    # When the period has passed
    with freeze_time(start + timedelta(minutes=16)):
        response = post_login(client, dispatcher.email, PASSWORD)
        # Then the right password works again and the counter is reset
        assert response.status_code == 302
    dispatcher.refresh_from_db()
    assert dispatcher.failed_logins == 0 and dispatcher.locked_until is None


def test_successful_login_resets_failure_counter(client, dispatcher, settings):
    settings.LOCKOUT_THRESHOLD = 3
    post_login(client, dispatcher.email, "wrong password!")
    post_login(client, dispatcher.email, "wrong password!")
    assert post_login(client, dispatcher.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    # A failure from the browser and address that just signed in does not count...
    post_login(client, dispatcher.email, "wrong password!")
    dispatcher.refresh_from_db()
    assert dispatcher.failed_logins == 0
    # ...one from an unknown browser and address counts from zero again
    client.cookies.clear()
    post_login(client, dispatcher.email, "wrong password!", REMOTE_ADDR="198.51.100.7")
    dispatcher.refresh_from_db()
    assert dispatcher.failed_logins == 1 and dispatcher.locked_until is None


def test_ip_rate_limit_blocks_an_address_across_accounts(client, dispatcher, settings):
    settings.LOGIN_IP_LIMIT = 4
    settings.LOCKOUT_THRESHOLD = 100
    # Given four failures from one address against different accounts
    for n in range(4):
        post_login(client, f"probe{n}@msp.test", "guess password", REMOTE_ADDR="203.0.113.9")
    # When a real user signs in from that address with the right password
    response = post_login(client, dispatcher.email, PASSWORD, REMOTE_ADDR="203.0.113.9")
    # Then the address is refused
    assert response.status_code == 400
    assert accounts.IP_LIMITED in response.content.decode()
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN_FAILED,
                                     changes__reason="ip_limited").exists()
    # And another address is not affected
    assert post_login(client, dispatcher.email, PASSWORD,
                      REMOTE_ADDR="198.51.100.7").status_code == 302


def test_ip_limit_window_is_fifteen_minutes(client, dispatcher, settings):
    settings.LOGIN_IP_LIMIT = 2
    start = timezone.now()
    with freeze_time(start):
        for _ in range(2):
            post_login(client, "x@msp.test", "guess password", REMOTE_ADDR="203.0.113.10")
        assert post_login(client, dispatcher.email, PASSWORD,
                          REMOTE_ADDR="203.0.113.10").status_code == 400
    with freeze_time(start + timedelta(minutes=16)):
        assert post_login(client, dispatcher.email, PASSWORD,
                          REMOTE_ADDR="203.0.113.10").status_code == 302


def test_inactive_user_cannot_sign_in(client, dispatcher, owner):
    accounts.deactivate_user(actor=owner, user=dispatcher)
    assert post_login(client, dispatcher.email, PASSWORD).status_code == 400


def test_forced_password_change_at_first_login(client, owner, client_a):
    # Given a technician created with a one-time password (technicians need no MFA)
    user, one_time = accounts.create_user(actor=owner, email="new@msp.test",
                                          role=Role.TECHNICIAN, assigned_clients=[client_a])
    # When they sign in
    response = post_login(client, user.email, one_time)
    # Then they are sent to change it and cannot reach other pages
    assert response["Location"] == reverse("password_change")
    assert client.get(reverse("profile"))["Location"] == reverse("password_change")
    assert client.get("/api/v1/me/").status_code == 403
    # When they pick a weak one, it is refused by the validators
    response = client.post(reverse("password_change"), {
        "old_password": one_time, "new_password": "12345678", "new_password2": "12345678"})
    assert response.status_code == 400
    # When they pick a good one
    response = client.post(reverse("password_change"), {
        "old_password": one_time, "new_password": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD})
    # Then they stay signed in, the flag is cleared and pages open
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.must_change_password and user.check_password(NEW_PASSWORD)
    assert client.get(reverse("profile")).status_code == 200
    entry = AuditEntry.objects.filter(action=AuditAction.UPDATE, object_id=str(user.pk)).first()
    assert entry.changes["password"] == ["••••", "••••"]
    assert one_time not in str(entry.changes) and NEW_PASSWORD not in str(entry.changes)


def test_password_change_requires_the_current_password(client, as_user, dispatcher):
    as_user(dispatcher)
    response = client.post(reverse("password_change"), {
        "old_password": "not it at all", "new_password": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD})
    assert response.status_code == 400
    dispatcher.refresh_from_db()
    assert dispatcher.check_password(PASSWORD)


def test_logout_is_post_only_and_audited(client, as_user, dispatcher):
    as_user(dispatcher)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action=AuditAction.LOGOUT, actor=dispatcher).exists()
    # And the session is really gone
    assert client.get(reverse("profile")).status_code == 302


def test_owner_with_mfa_is_not_signed_in_until_the_code(client, owner):
    # Given an owner with MFA enrolled
    response = post_login(client, owner.email, PASSWORD)
    # Then the password alone leads to the code step without a signed-in session
    assert response["Location"] == reverse("mfa_verify")
    assert "_auth_user_id" not in client.session
    assert not AuditEntry.objects.filter(action=AuditAction.LOGIN).exists()
    assert client.get(reverse("profile")).status_code == 302
    assert client.get("/api/v1/me/").status_code in (401, 403)
    assert User.objects.get(pk=owner.pk).last_login is None
    assert SESSION_MFA_VERIFIED not in client.session
