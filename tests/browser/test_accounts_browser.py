"""Browser: profile, API tokens (raw token shown once, works, revoked), user and role
administration, and a new user's first sign-in with the one-time password."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from watchkeeper.core.choices import Role
from watchkeeper.core.models import ApiToken, RolePolicy, User

from .conftest import axe_check

pytestmark = pytest.mark.browser


def test_profile_time_zone(signed_in_page, owner):
    page = signed_in_page(owner)
    # When the owner opens the profile from the account menu
    page.locator("#profile-menu > summary").click()
    page.locator("#profile-menu").get_by_role("link", name="Profile & security").click()
    expect(page.get_by_role("heading", level=1, name="Your profile")).to_be_visible()
    axe_check(page, "profile")

    # and changes the name and time zone
    page.locator("#id_name").fill("Olive Owner")
    page.locator("#id_timezone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save profile").click()

    # Then it is saved and the top bar greets the new name
    expect(page.locator("#profile-menu > summary")).to_contain_text("Olive Owner")
    owner.refresh_from_db()
    assert (owner.name, owner.timezone) == ("Olive Owner", "Europe/Paris")


def test_api_token_shown_once_works_and_revokes(signed_in_page, owner, live_server):
    page = signed_in_page(owner)
    page.goto("/profile/tokens/")
    expect(page.get_by_role("heading", name="No API tokens yet")).to_be_visible()
    axe_check(page, "tokens, empty")

    # When a token is created
    page.locator("#id_name").fill("nagios")
    page.get_by_role("button", name="Create token").click()

    # Then the raw token is shown once, and it authenticates API calls
    raw = page.locator("#raw-token").inner_text().strip()
    assert raw.startswith("wk_")
    axe_check(page, "token created")
    api = page.request.get(f"{live_server.url}/api/v1/clients/",
                           headers={"Authorization": f"Bearer {raw}"})
    assert api.status == 200, api.text()

    # and a reload does not show it again
    page.goto("/profile/tokens/")
    expect(page.locator("#raw-token")).to_have_count(0)
    assert raw not in page.content()

    # When it is revoked, then the list says so and the API refuses it
    page.get_by_role("button", name="Revoke token nagios").click()
    expect(page.get_by_text("Revoked").first).to_be_visible()
    assert ApiToken.objects.get(name="nagios").revoked_at is not None
    api = page.request.get(f"{live_server.url}/api/v1/clients/",
                           headers={"Authorization": f"Bearer {raw}"})
    assert api.status == 401


def test_user_admin_and_first_sign_in(signed_in_page, owner, client_a, browser, live_server):
    page = signed_in_page(owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()
    axe_check(page, "users")

    # When the owner creates a technician assigned to client A
    page.get_by_role("link", name=re.compile("New user")).first.click()
    page.locator("#id_email").fill("newtech@msp.test")
    page.locator("#id_name").fill("Nina Tech")
    page.locator("#id_role").select_option(Role.TECHNICIAN)
    page.get_by_label("Acme Dental").check()
    axe_check(page, "user form")
    page.get_by_role("button", name="Create user").click()

    # Then a one-time password is shown once
    expect(page.get_by_role("heading", level=1)).to_contain_text("newtech@msp.test")
    one_time = page.locator("#one-time-password").inner_text().strip()
    assert one_time
    axe_check(page, "user created")
    user = User.objects.get(email="newtech@msp.test")
    assert list(user.assigned_clients.all()) == [client_a]

    # When the new user signs in with it (in their own browser), they must choose a password
    other = browser.new_context(base_url=live_server.url)
    try:
        theirs = other.new_page()
        theirs.goto("/login/")
        theirs.get_by_label("Email").fill("newtech@msp.test")
        theirs.get_by_label("Password").fill(one_time)
        theirs.get_by_role("button", name="Sign in").click()
        expect(theirs).to_have_url(re.compile(r"/profile/password/"))
        axe_check(theirs, "forced password change")
        theirs.locator("#id_old_password").fill(one_time)
        theirs.locator("#id_new_password").fill("a much longer passphrase 42")
        theirs.locator("#id_new_password2").fill("a much longer passphrase 42")
        theirs.get_by_role("button", name="Change password").click()
        expect(theirs).not_to_have_url(re.compile(r"/profile/password/"))
        user.refresh_from_db()
        assert user.must_change_password is False
    finally:
        other.close()

    # When the owner deactivates the user from their page
    page.goto("/admin/users/")
    page.get_by_role("link", name="newtech@msp.test").click()
    axe_check(page, "user edit")
    page.get_by_role("button", name="Deactivate newtech@msp.test").click()
    expect(page.get_by_text("Deactivated").first).to_be_visible()
    user.refresh_from_db()
    assert user.is_active is False


def test_roles_page_and_mfa_policy(signed_in_page, owner):
    page = signed_in_page(owner)
    page.goto("/admin/roles/")
    expect(page.get_by_role("heading", level=1, name="Roles")).to_be_visible()
    axe_check(page, "roles")

    # When MFA is required for technicians
    page.get_by_role("button", name="Require MFA for Technician").click()

    # Then the policy is stored and the button now offers the opposite
    expect(page.get_by_role("button", name="Make optional for Technician")).to_be_visible()
    assert RolePolicy.objects.get(role=Role.TECHNICIAN).mfa_required is True


def test_mfa_enrolment_required_for_admin(page):
    # Given an admin without MFA (admins must use it unless an owner turns that off)
    from tests.factories import PASSWORD, make_user

    admin = make_user("newadmin@msp.test", Role.ADMIN, mfa=False)
    page.goto("/login/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Then set-up is required before anything else, with a key to type in by hand
    expect(page).to_have_url(re.compile(r"/profile/mfa/setup/"))
    axe_check(page, "MFA set-up")
    page.goto("/admin/audit/")
    expect(page).to_have_url(re.compile(r"/profile/mfa/setup/"))
    key = page.locator("#manual-key").inner_text().replace(" ", "")

    # When a code from that key confirms it
    import pyotp

    page.get_by_label("Authentication code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm and turn on").click()

    # Then recovery codes are shown once, and the product opens
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert page.get_by_role("list", name="Recovery codes").get_by_role("listitem").count() >= 8
    axe_check(page, "recovery codes")
    page.get_by_role("link", name=re.compile("continue")).click()
    expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    admin.refresh_from_db()
    assert admin.mfa_enabled


def test_client_portal(signed_in_page, portal_b, client_b):
    # Given a portal user of client B
    page = signed_in_page(portal_b)
    page.goto("/portal/")
    # Then they see their organisation and no staff pages
    expect(page.get_by_role("heading", level=1, name=client_b.name)).to_be_visible()
    axe_check(page, "client portal")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Clients")).to_have_count(0)
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    assert page.goto("/clients/").status == 403


def test_a_stale_session_confirms_before_minting_and_admins_see_sessions_and_tokens(
        signed_in_page, owner, admin_user, browser, live_server):
    import time

    from django.contrib.sessions.backends.db import SessionStore

    from watchkeeper.core.auth import SESSION_AUTH_AT

    from .conftest import PASSWORD, _next_totp

    page = signed_in_page(owner)
    # Given a session that signed in an hour ago
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    store = SessionStore(session_key=key)
    store[SESSION_AUTH_AT] = int(time.time()) - 3600
    store.save()

    # When the owner opens the tokens page, it asks them to confirm first
    page.goto("/profile/tokens/")
    expect(page.get_by_role("button", name="Create token")).to_have_count(0)
    axe_check(page, "tokens, confirm step")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Authentication code").fill(_next_totp(owner))
    page.get_by_role("button", name="Confirm it's you").click()

    # Then the form is there; every expiry offered is within the owner's limit
    expect(page.get_by_role("button", name="Create token")).to_be_visible()
    options = page.locator("#id_expires_in option").all_inner_texts()
    assert "Never" not in " ".join(options) and "2 years" not in " ".join(options)
    page.locator("#id_name").fill("backup script")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#raw-token")).to_be_visible()

    # When an admin opens the owner's user page, they see the session and the token
    from .conftest import AXE_JS, sign_in_through_form

    other = browser.new_context(base_url=live_server.url)
    other.add_init_script(path=str(AXE_JS))
    admin_page = other.new_page()

    sign_in_through_form(admin_page, admin_user)
    admin_page.goto(f"/admin/users/{owner.pk}/")
    section = admin_page.locator("section", has=admin_page.get_by_role(
        "heading", name="Active sessions and API tokens"))
    expect(section.get_by_text("backup script")).to_be_visible()
    expect(section.get_by_role("button", name=f"Sign {owner.email} out everywhere")) \
        .to_be_visible()
    axe_check(admin_page, "user page, sessions and tokens")
    other.close()
