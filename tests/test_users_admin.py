"""User administration: list with filters, create with a one-time password, edit, deactivate,
the owner-only owner role, the users API, and the audit rows of each write."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from tests.factories import PASSWORD, make_user
from watchkeeper.core import accounts
from watchkeeper.core.choices import AuditAction, Role
from watchkeeper.core.models import AuditEntry, Event, User


def test_users_list_shows_role_clients_mfa_and_status(client, as_user, admin_user, tech_a,
                                                      portal_b):
    as_user(admin_user)
    page = client.get(reverse("users")).content.decode()
    assert "tech@msp.test" in page and "Acme Dental" in page
    assert "jo@borealis.test" in page and "Borealis Logistics" in page
    assert "Technician" in page and "Client user" in page


def test_users_list_filters_by_role_search_and_status(client, as_user, admin_user, tech_a,
                                                      portal_b, owner):
    accounts.deactivate_user(actor=owner, user=portal_b)
    as_user(admin_user)
    page = client.get(reverse("users"), {"role": "technician"}).content.decode()
    assert "tech@msp.test" in page and "owner@msp.test" not in page
    page = client.get(reverse("users"), {"q": "borealis"}).content.decode()
    assert "jo@borealis.test" not in page  # deactivated users are hidden by default
    page = client.get(reverse("users"), {"q": "borealis", "status": "inactive"}).content.decode()
    assert "jo@borealis.test" in page and "tech@msp.test" not in page
    page = client.get(reverse("users"), {"q": "zzz-nobody"}).content.decode()
    assert "No user matches these filters" in page


def test_dispatcher_sees_users_but_cannot_manage(client, as_user, tech_a):
    dispatcher = make_user("d@msp.test", Role.DISPATCHER)
    as_user(dispatcher)
    assert client.get(reverse("users")).status_code == 200
    assert client.get(reverse("roles")).status_code == 200
    assert client.get(reverse("user_create")).status_code == 403
    assert client.get(reverse("user_edit", args=[tech_a.pk])).status_code == 403
    assert client.post("/api/v1/users/", {"email": "x@msp.test", "role": "readonly"},
                       content_type="application/json").status_code == 403


def test_technician_and_client_user_cannot_see_users(client, as_user, tech_a, portal_b):
    as_user(tech_a)
    assert client.get(reverse("users")).status_code == 403
    assert client.get("/api/v1/users/").status_code == 403
    as_user(portal_b)
    assert client.get(reverse("users")).status_code == 403


def test_admin_creates_technician_with_one_time_password(client, as_user, admin_user,
                                                         client_a):
    # When an admin creates a technician assigned to client A
    as_user(admin_user)
    response = client.post(reverse("user_create"), {
        "email": "New.Tech@MSP.test", "name": "New Tech", "role": "technician",
        "assigned_clients": [client_a.pk], "timezone": "Europe/Berlin"})
    # Then the one-time password is shown once and works, and a change is forced
    assert response.status_code == 200
    password = response.content.decode().split('id="one-time-password">')[1].split("<")[0]
    user = User.objects.get(email="new.tech@msp.test")
    assert user.check_password(password) and user.must_change_password
    assert list(user.assigned_clients.all()) == [client_a]
    assert user.timezone == "Europe/Berlin"
    # And the creation is audited (password masked) with an event
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_id=str(user.pk))
    assert entry.actor == admin_user
    assert entry.changes["role"] == [None, "technician"]
    assert entry.changes["assigned_clients"] == [None, [client_a.pk]]
    assert password not in str(entry.changes)
    assert Event.objects.filter(kind="user.created", payload__id=user.pk).exists()


def test_create_refuses_duplicate_email_and_client_user_without_client(client, as_user,
                                                                       admin_user, tech_a):
    as_user(admin_user)
    response = client.post(reverse("user_create"), {"email": "TECH@msp.test",
                                                    "role": "readonly", "timezone": "UTC"})
    assert response.status_code == 400
    response = client.post(reverse("user_create"), {"email": "c@x.test",
                                                    "role": "client_user", "timezone": "UTC"})
    assert response.status_code == 400
    assert not User.objects.filter(email="c@x.test").exists()


def test_only_an_owner_grants_the_owner_role(admin_user, owner):
    with pytest.raises(PermissionDenied):
        accounts.create_user(actor=admin_user, email="o2@msp.test", role=Role.OWNER)
    user, _ = accounts.create_user(actor=owner, email="o2@msp.test", role=Role.OWNER)
    assert user.role == Role.OWNER
    with pytest.raises(PermissionDenied):
        accounts.update_user(actor=admin_user, user=owner, name="renamed by admin")


def test_the_last_owner_cannot_be_demoted_or_deactivated(owner, admin_user):
    with pytest.raises(ValidationError):
        accounts.update_user(actor=owner, user=owner, role=Role.ADMIN)
    with pytest.raises(ValidationError):
        accounts.update_user(actor=owner, user=owner, is_active=False)


def test_edit_changes_role_and_assignments_with_a_diff_in_the_audit(client, as_user,
                                                                   admin_user, tech_a,
                                                                   client_a, client_b):
    # When an admin moves the technician from client A to client B
    as_user(admin_user)
    response = client.post(reverse("user_edit", args=[tech_a.pk]), {
        "action": "save", "name": "Tess", "role": "technician",
        "assigned_clients": [client_b.pk], "timezone": "UTC"})
    assert response.status_code == 302
    # Then assignments change and the audit row holds old and new values
    tech_a.refresh_from_db()
    assert list(tech_a.assigned_clients.all()) == [client_b]
    entry = AuditEntry.objects.get(action=AuditAction.UPDATE, object_id=str(tech_a.pk))
    assert entry.changes["assigned_clients"] == [[client_a.pk], [client_b.pk]]
    assert entry.changes["name"] == ["", "Tess"]
    # And the edit page shows the history
    assert "Tess" in client.get(reverse("user_edit", args=[tech_a.pk])).content.decode()


def test_changing_role_away_from_technician_clears_assignments(owner, tech_a):
    user = accounts.update_user(actor=owner, user=tech_a, role=Role.DISPATCHER)
    assert user.role == Role.DISPATCHER
    assert not user.assigned_clients.exists()


def test_deactivate_ends_sign_in_and_sessions(client, as_user, admin_user, tech_a):
    # Given the technician has a running session
    from django.test import Client

    tech_browser = Client()
    from tests.conftest import sign_in

    sign_in(tech_browser, tech_a)
    assert tech_browser.get(reverse("profile")).status_code == 200
    # When an admin deactivates them
    as_user(admin_user)
    response = client.post(reverse("user_edit", args=[tech_a.pk]), {"action": "deactivate"})
    assert response.status_code == 302
    # Then the running session no longer works and sign-in is refused
    assert tech_browser.get(reverse("profile")).status_code == 302
    assert Client().post(reverse("login"), {"email": tech_a.email,
                                            "password": PASSWORD}).status_code == 400
    entry = AuditEntry.objects.get(action=AuditAction.UPDATE, object_id=str(tech_a.pk))
    assert entry.changes["is_active"] == [True, False]
    assert Event.objects.filter(kind="user.deactivated").exists()


def test_admin_cannot_deactivate_themselves(client, as_user, admin_user):
    as_user(admin_user)
    client.post(reverse("user_edit", args=[admin_user.pk]), {"action": "deactivate"})
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_admin_unlocks_a_locked_account(client, as_user, admin_user, tech_a, settings):
    settings.LOCKOUT_THRESHOLD = 1
    accounts.record_login_failure(email=tech_a.email, user=tech_a, ip="192.0.2.1",
                                  reason="bad_password")
    tech_a.refresh_from_db()
    assert accounts.is_locked(tech_a)
    as_user(admin_user)
    client.post(reverse("user_edit", args=[tech_a.pk]), {"action": "unlock"})
    tech_a.refresh_from_db()
    assert not accounts.is_locked(tech_a)


def test_users_api_lists_creates_updates_and_deactivates(client, as_user, owner, client_a,
                                                         client_b):
    as_user(owner)
    response = client.post("/api/v1/users/", {
        "email": "api@msp.test", "role": "technician", "assigned_clients": [client_a.pk]},
        content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["must_change_password"] is True and created["one_time_password"]
    assert "password" not in {k for k in created if k != "one_time_password"}
    pk = created["id"]
    response = client.patch(f"/api/v1/users/{pk}/", {"assigned_clients": [client_b.pk],
                                                     "name": "Api"},
                            content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["assigned_clients"] == [client_b.pk]
    listed = client.get("/api/v1/users/", {"role": "technician"}).json()["results"]
    assert [u["email"] for u in listed] == ["api@msp.test"]
    assert client.delete(f"/api/v1/users/{pk}/").status_code == 204
    assert User.objects.get(pk=pk).is_active is False
    actions = list(AuditEntry.objects.filter(object_id=str(pk), object_type="core.user")
                   .values_list("action", flat=True))
    assert sorted(actions) == ["create", "update", "update"]


def test_users_api_refuses_invalid_membership(client, as_user, owner):
    as_user(owner)
    response = client.post("/api/v1/users/", {"email": "cu@x.test", "role": "client_user"},
                           content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")


def test_me_endpoint_returns_own_profile(client, as_user, portal_b):
    as_user(portal_b)
    body = client.get("/api/v1/me/").json()
    assert body["email"] == portal_b.email and body["role"] == "client_user"
    assert "portal.view" in body["capabilities"]


def test_profile_page_saves_name_and_time_zone(client, as_user, tech_a):
    as_user(tech_a)
    response = client.post(reverse("profile"), {"name": "Tess T", "timezone": "Asia/Tokyo"})
    assert response.status_code == 302
    tech_a.refresh_from_db()
    assert (tech_a.name, tech_a.timezone) == ("Tess T", "Asia/Tokyo")
    assert AuditEntry.objects.filter(action=AuditAction.UPDATE, actor=tech_a,
                                     changes__timezone=["UTC", "Asia/Tokyo"]).exists()
    page = client.get(reverse("profile")).content.decode()
    assert "Two-factor authentication" in page


def test_roles_page_shows_the_capability_matrix(client, as_user, db):
    viewer = make_user("ro@msp.test", Role.READONLY)
    as_user(viewer)
    page = client.get(reverse("roles")).content.decode()
    assert "users.manage" in page and "Read-only" in page
    assert "Require MFA" not in page  # read-only users see the policy, not the buttons


def test_users_page_and_api_query_counts_do_not_grow_with_users(client, as_user, owner,
                                                                client_a, client_b):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(url):
        as_user(owner)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    def add_technicians(start, n):
        for i in range(start, start + n):
            tech = make_user(f"t{i}@msp.test", Role.TECHNICIAN, mfa=False)
            tech.assigned_clients.add(client_a, client_b)

    # Given a few technicians, then many more
    add_technicians(0, 3)
    few = count(reverse("users")), count("/api/v1/users/")
    add_technicians(3, 20)
    many = count(reverse("users")), count("/api/v1/users/")
    # Then listing them costs the same number of queries
    assert many == few


def test_admin_resets_a_forgotten_password(client, as_user, admin_user, tech_a):
    # Given a technician signed in elsewhere
    from django.test import Client

    from tests.conftest import sign_in

    elsewhere = sign_in(Client(), tech_a)
    # When an admin resets their password
    as_user(admin_user)
    response = client.post(reverse("user_edit", args=[tech_a.pk]), {"action": "reset_password"})
    # Then a new one-time password is shown once, works, and must be changed
    password = response.content.decode().split('id="one-time-password">')[1].split("<")[0]
    tech_a.refresh_from_db()
    assert tech_a.check_password(password) and tech_a.must_change_password
    assert not tech_a.check_password(PASSWORD)
    # And the running session elsewhere has ended
    assert elsewhere.get(reverse("profile")).status_code == 302
    entry = AuditEntry.objects.get(action=AuditAction.UPDATE, object_id=str(tech_a.pk))
    assert entry.actor == admin_user and password not in str(entry.changes)
    # And the new password passes the password step (the MFA code comes next)
    fresh = Client()
    response = fresh.post(reverse("login"), {"email": tech_a.email, "password": password})
    assert response["Location"] == reverse("mfa_verify")


def test_users_api_resets_a_password_and_refuses_owner_targets_for_admins(client, as_user,
                                                                          admin_user, owner,
                                                                          tech_a):
    as_user(admin_user)
    response = client.post(f"/api/v1/users/{tech_a.pk}/reset-password/")
    assert response.status_code == 200
    tech_a.refresh_from_db()
    assert tech_a.check_password(response.json()["one_time_password"])
    assert tech_a.must_change_password
    response = client.post(f"/api/v1/users/{owner.pk}/reset-password/")
    assert response.status_code == 403
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
