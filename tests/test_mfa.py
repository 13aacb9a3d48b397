"""TOTP MFA: enforcement by role policy, set-up, the code step, replay refusal, recovery codes
and an administrator's reset."""

from __future__ import annotations

import re

import pyotp
import pytest
from django.urls import reverse

from tests.conftest import totp_now
from tests.factories import PASSWORD, make_user
from watchkeeper.core import accounts, crypto
from watchkeeper.core.auth import SESSION_MFA_VERIFIED
from watchkeeper.core.choices import AuditAction, Role
from watchkeeper.core.models import AuditEntry, Event, RecoveryCode, RolePolicy, User


def post_login(client, email, password=PASSWORD):
    return client.post(reverse("login"), {"email": email, "password": password})


def pending_secret(client) -> str:
    from watchkeeper.core.views.auth import SESSION_MFA_SECRET

    return client.session[SESSION_MFA_SECRET]


@pytest.fixture
def new_owner(db):
    return make_user("fresh-owner@msp.test", Role.OWNER, mfa=False)


def enrol(client, user) -> list[str]:
    """Drive the set-up page; returns the recovery codes it shows."""
    client.get(reverse("mfa_setup"))
    secret = pending_secret(client)
    response = client.post(reverse("mfa_setup"), {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    return re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>",
                      response.content.decode())


def test_owner_without_mfa_must_set_it_up_before_anything_else(client, new_owner):
    # Given an owner who has never enrolled MFA signs in with the password
    response = post_login(client, new_owner.email)
    # Then they are sent to set-up
    assert response["Location"] == reverse("mfa_setup")
    # And neither dashboard-protected pages nor the session API are reachable
    assert client.get(reverse("dashboard"))["Location"] == reverse("mfa_setup")
    assert client.get(reverse("users"))["Location"] == reverse("mfa_setup")
    assert client.get("/api/v1/me/").status_code == 403
    assert client.get("/api/v1/users/").status_code == 403
    # When they confirm a code from the scanned key
    page = client.get(reverse("mfa_setup")).content.decode()
    assert "<svg" in page  # QR rendered inline
    secret = pending_secret(client)
    assert " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)) in page
    codes = enrol(client, new_owner)
    # Then MFA is on, the key is stored encrypted, and ten recovery codes are shown once
    new_owner.refresh_from_db()
    assert new_owner.mfa_enabled
    assert secret not in new_owner.totp_secret_enc
    assert crypto.decrypt(new_owner.totp_secret_enc, "totp") == secret
    assert len(codes) == 10 and len(set(codes)) == 10
    assert RecoveryCode.objects.filter(user=new_owner).count() == 10
    assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()
    # And the product opens
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get("/api/v1/me/").json()["email"] == new_owner.email
    assert AuditEntry.objects.filter(action=AuditAction.MFA, object_id=str(new_owner.pk),
                                     changes__mfa=["off", "totp"]).exists()
    assert Event.objects.filter(kind="user.mfa_enabled").exists()


def test_setup_refuses_a_wrong_first_code(client, new_owner):
    post_login(client, new_owner.email)
    client.get(reverse("mfa_setup"))
    response = client.post(reverse("mfa_setup"), {"code": "000000"})
    assert response.status_code == 400
    new_owner.refresh_from_db()
    assert not new_owner.mfa_enabled and new_owner.totp_secret_enc == ""


def test_setup_key_stays_the_same_until_confirmed(client, new_owner):
    post_login(client, new_owner.email)
    client.get(reverse("mfa_setup"))
    first = pending_secret(client)
    client.get(reverse("mfa_setup"))
    assert pending_secret(client) == first


def test_role_policy_toggle_changes_enforcement_for_technicians(client, owner, tech_a):
    # Given a technician without MFA (technicians do not need it by default)
    User.objects.filter(pk=tech_a.pk).update(totp_secret_enc="", mfa_enabled_at=None)
    assert post_login(client, tech_a.email)["Location"] == reverse("dashboard")
    assert client.get(reverse("profile")).status_code == 200
    client.post(reverse("logout"))
    # When an owner requires MFA for technicians
    accounts.set_role_policy(actor=owner, role=Role.TECHNICIAN, mfa_required=True)
    # Then the technician must set it up at the next sign-in, and even the running session
    # is held at set-up
    assert post_login(client, tech_a.email)["Location"] == reverse("mfa_setup")
    assert client.get(reverse("profile"))["Location"] == reverse("mfa_setup")
    # And the change is in the audit log with old and new values
    entry = AuditEntry.objects.get(object_type="core.rolepolicy")
    assert entry.changes == {"mfa_required": [False, True]} and entry.actor == owner
    # When the owner turns it off again, the technician is let through
    accounts.set_role_policy(actor=owner, role=Role.TECHNICIAN, mfa_required=False)
    assert client.get(reverse("profile")).status_code == 200


def test_owner_can_turn_off_the_default_requirement_for_owners(client, owner, new_owner):
    accounts.set_role_policy(actor=owner, role=Role.OWNER, mfa_required=False)
    assert post_login(client, new_owner.email)["Location"] == reverse("dashboard")


def test_role_policy_page_toggles_the_requirement(client, as_user, owner):
    as_user(owner)
    response = client.post(reverse("role_policy", args=[Role.DISPATCHER]),
                           {"mfa_required": "on"})
    assert response["Location"] == reverse("roles")
    assert RolePolicy.objects.get(role=Role.DISPATCHER).mfa_required is True
    page = client.get(reverse("roles")).content.decode()
    assert "See the dashboard" in page and "Required" in page


def test_technician_cannot_change_role_policy(client, as_user, tech_a):
    as_user(tech_a)
    response = client.post(reverse("role_policy", args=[Role.TECHNICIAN]), {})
    assert response.status_code == 403
    assert not RolePolicy.objects.exists()


def test_totp_code_signs_in_and_cannot_be_replayed(client, owner):
    # Given an owner past the password step
    assert post_login(client, owner.email)["Location"] == reverse("mfa_verify")
    code = totp_now(owner)
    # When they enter the current code
    response = client.post(reverse("mfa_verify"), {"code": code})
    # Then they are signed in with the MFA step done
    assert response["Location"] == reverse("dashboard")
    assert client.session[SESSION_MFA_VERIFIED] is True
    assert int(client.session["_auth_user_id"]) == owner.pk
    assert AuditEntry.objects.get(action=AuditAction.LOGIN).changes == {"method": "totp"}
    # When someone replays the same code in another session within its time step
    client.post(reverse("logout"))
    post_login(client, owner.email)
    response = client.post(reverse("mfa_verify"), {"code": code})
    # Then it is refused
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN_FAILED,
                                     changes__reason="bad_mfa_code").exists()


def test_verify_totp_refuses_replay_directly(owner):
    code = totp_now(owner)
    assert accounts.verify_totp(owner, code) is True
    assert accounts.verify_totp(User.objects.get(pk=owner.pk), code) is False


def test_wrong_codes_count_towards_lockout(client, owner, settings):
    settings.LOCKOUT_THRESHOLD = 2
    post_login(client, owner.email)
    client.post(reverse("mfa_verify"), {"code": "000000"})
    client.post(reverse("mfa_verify"), {"code": "000001"})
    owner.refresh_from_db()
    assert accounts.is_locked(owner)
    # A correct code is now refused too
    response = client.post(reverse("mfa_verify"), {"code": totp_now(owner)})
    assert response.status_code == 400 and "_auth_user_id" not in client.session


def test_code_step_without_password_step_goes_back_to_login(client, owner):
    response = client.post(reverse("mfa_verify"), {"code": totp_now(owner)})
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_recovery_code_works_exactly_once(client, new_owner):
    # Given an owner who enrolled and kept the recovery codes
    post_login(client, new_owner.email)
    codes = enrol(client, new_owner)
    client.post(reverse("logout"))
    # When they sign in with a recovery code instead of the app
    post_login(client, new_owner.email)
    response = client.post(reverse("mfa_verify"), {"code": codes[0].upper()})
    # Then it works (case and dashes do not matter) and is spent
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == new_owner.pk
    assert accounts.recovery_codes_left(new_owner) == 9
    client.post(reverse("logout"))
    # When the same code is used again
    post_login(client, new_owner.email)
    response = client.post(reverse("mfa_verify"), {"code": codes[0]})
    # Then it is refused
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    # While another unused code still works
    assert client.post(reverse("mfa_verify"), {"code": codes[1]}).status_code == 302


def test_regenerating_recovery_codes_invalidates_old_ones(client, new_owner):
    post_login(client, new_owner.email)
    old = enrol(client, new_owner)
    response = client.post(reverse("recovery_codes_regenerate"))
    new = re.findall(r"<code>([a-z2-7-]{19})</code>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    new_owner.refresh_from_db()
    assert not accounts.use_recovery_code(new_owner, old[0])
    assert accounts.use_recovery_code(new_owner, new[0])


def test_admin_resets_mfa_and_user_must_enrol_again(client, as_user, admin_user, owner):
    # Given a technician with MFA
    tech = make_user("t2@msp.test", Role.TECHNICIAN)
    accounts.regenerate_recovery_codes(actor=tech, user=tech)
    accounts.set_role_policy(actor=owner, role=Role.TECHNICIAN, mfa_required=True)
    # When an admin resets it from the user page
    as_user(admin_user)
    response = client.post(reverse("user_edit", args=[tech.pk]), {"action": "reset_mfa"})
    assert response.status_code == 302
    # Then the key and recovery codes are gone, and the change is audited
    tech.refresh_from_db()
    assert not tech.mfa_enabled and tech.totp_secret_enc == ""
    assert not RecoveryCode.objects.filter(user=tech).exists()
    entry = AuditEntry.objects.get(action=AuditAction.MFA, object_id=str(tech.pk),
                                   changes__mfa=["totp", "off"])
    assert entry.actor == admin_user
    # And at next sign-in the technician goes to set-up
    client.post(reverse("logout"))
    assert post_login(client, tech.email)["Location"] == reverse("mfa_setup")


def test_admin_cannot_reset_an_owners_mfa(client, as_user, admin_user, owner):
    as_user(admin_user)
    client.post(reverse("user_edit", args=[owner.pk]), {"action": "reset_mfa"})
    owner.refresh_from_db()
    assert owner.mfa_enabled


def test_admin_cannot_weaken_mfa_for_owners_and_admins(client, as_user, admin_user):
    # Given an admin (who may manage users)
    as_user(admin_user)
    # When they try to make MFA optional for admins
    response = client.post(reverse("role_policy", args=[Role.ADMIN]), {})
    # Then nothing changes; the page says only owners may
    assert response["Location"] == reverse("roles")
    assert not RolePolicy.objects.filter(role=Role.ADMIN).exists()
    assert "Owners only" in client.get(reverse("roles")).content.decode()
    # While policies of other roles are theirs to change
    client.post(reverse("role_policy", args=[Role.READONLY]), {"mfa_required": "on"})
    assert RolePolicy.objects.get(role=Role.READONLY).mfa_required is True
