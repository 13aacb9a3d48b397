"""Personal API tokens: format, scopes against real API routes, expiry, revocation,
last-used tracking, the tokens page and /api/v1/tokens/, and their audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from watchkeeper.core import accounts
from watchkeeper.core.api.auth import hash_token, split_token
from watchkeeper.core.choices import AuditAction, TokenScope
from watchkeeper.core.models import ApiToken, AuditEntry, Event


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def read_token(admin_user):
    return accounts.create_token(actor=admin_user, user=admin_user, name="read",
                                 scope=TokenScope.READ)


@pytest.fixture
def write_token(admin_user):
    return accounts.create_token(actor=admin_user, user=admin_user, name="write",
                                 scope=TokenScope.WRITE)


def test_raw_token_has_the_documented_format_and_only_its_hash_is_stored(read_token):
    token, raw = read_token
    assert split_token(raw) == (token.prefix, raw)
    assert raw.startswith(f"wk_{token.prefix}_")
    assert token.token_hash == hash_token(raw)
    assert raw not in str(ApiToken.objects.filter(pk=token.pk).values().get())


def test_token_creation_and_revocation_are_audited_without_the_raw_value(admin_user,
                                                                         read_token):
    token, raw = read_token
    accounts.revoke_token(actor=admin_user, token=token)
    rows = AuditEntry.objects.filter(action=AuditAction.TOKEN, object_id=str(token.pk))
    assert rows.count() == 2
    assert rows.filter(changes__scope=[None, "read"]).exists()
    assert rows.filter(changes__has_key="revoked_at").exists()
    for row in rows:
        assert raw not in str(row.changes) and raw.split("_")[2] not in str(row.changes)
    assert Event.objects.filter(kind="token.created").exists()
    assert Event.objects.filter(kind="token.revoked").exists()


def test_read_token_may_get_but_not_post(client, read_token, client_a):
    _, raw = read_token
    # When a read token reads a real API route
    response = client.get("/api/v1/users/", **bearer(raw))
    # Then it works
    assert response.status_code == 200
    assert "admin@msp.test" in {u["email"] for u in response.json()["results"]}
    # When it writes
    response = client.post("/api/v1/users/", {"email": "x@msp.test", "role": "readonly"},
                           content_type="application/json", **bearer(raw))
    # Then it is refused as read-only
    assert response.status_code == 403
    assert response.json()["detail"] == "This API token is read-only."


def test_write_token_may_post(client, write_token):
    _, raw = write_token
    response = client.post("/api/v1/users/", {"email": "new@msp.test", "role": "readonly",
                                              "name": "New"},
                           content_type="application/json", **bearer(raw))
    assert response.status_code == 201, response.content
    assert response.json()["one_time_password"]
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_repr="New")
    assert entry.actor.email == "admin@msp.test"


def test_token_cannot_exceed_its_users_role(client, tech_a):
    _, raw = accounts.create_token(actor=tech_a, user=tech_a, name="t", scope=TokenScope.WRITE)
    assert client.get("/api/v1/users/", **bearer(raw)).status_code == 403
    assert client.get("/api/v1/me/", **bearer(raw)).json()["email"] == tech_a.email


@pytest.mark.parametrize("header", [
    "Bearer wk_nonsense",
    "Bearer not-a-token",
    "Bearer wk_abc_def_ghi",
    "Bearer wk_deadbeef0000_" + "0" * 64,
])
def test_malformed_or_unknown_tokens_are_401(client, db, header):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")


def test_token_with_right_prefix_but_wrong_secret_is_401(client, read_token):
    token, raw = read_token
    forged = f"wk_{token.prefix}_" + "f" * 64
    assert client.get("/api/v1/me/", **bearer(forged)).status_code == 401


def test_revoked_token_is_401(client, admin_user, read_token):
    token, raw = read_token
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 200
    accounts.revoke_token(actor=admin_user, token=token)
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 401


def test_expired_token_is_401(client, admin_user):
    token, raw = accounts.create_token(actor=admin_user, user=admin_user, name="short",
                                       scope=TokenScope.READ,
                                       expires_at=timezone.now() + timedelta(hours=1))
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 200
    with freeze_time(timezone.now() + timedelta(hours=2)):
        assert client.get("/api/v1/me/", **bearer(raw)).status_code == 401


def test_token_of_deactivated_user_is_401(client, owner, read_token, admin_user):
    _, raw = read_token
    accounts.deactivate_user(actor=owner, user=admin_user)
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 401


def test_last_used_time_and_address_are_recorded(client, read_token):
    token, raw = read_token
    assert token.last_used_at is None
    client.get("/api/v1/me/", REMOTE_ADDR="192.0.2.44", **bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_ip == "192.0.2.44"


def test_tokens_api_lists_creates_and_revokes_own_tokens(client, as_user, admin_user, owner,
                                                         read_token):
    foreign, _ = accounts.create_token(actor=owner, user=owner, name="owner's",
                                       scope=TokenScope.WRITE)
    as_user(admin_user)
    # When listing
    names = [t["name"] for t in client.get("/api/v1/tokens/").json()["results"]]
    # Then only one's own tokens appear, without hashes
    assert names == ["read"]
    # When creating
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = client.post("/api/v1/tokens/", {"name": "ci", "scope": "write",
                                               "expires_at": expires},
                           content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert "token_hash" not in body
    # Then the raw value works once given and is never listed again
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 200
    assert raw not in client.get("/api/v1/tokens/").content.decode()
    # And another user's token cannot be revoked (it is not found)
    assert client.delete(f"/api/v1/tokens/{foreign.pk}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    # When revoking one's own
    assert client.delete(f"/api/v1/tokens/{body['id']}/").status_code == 204
    assert client.get("/api/v1/me/", **bearer(raw)).status_code == 401


def test_read_token_cannot_mint_tokens(client, read_token):
    _, raw = read_token
    response = client.post("/api/v1/tokens/", {"name": "x", "scope": "write"},
                           content_type="application/json", **bearer(raw))
    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


def test_tokens_page_shows_the_raw_token_once_and_revokes(client, as_user, tech_a):
    as_user(tech_a)
    response = client.post(reverse("tokens"), {"name": "rmm script", "scope": "read",
                                               "expires_in": "30"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=tech_a)
    page = response.content.decode()
    raw = page.split('id="raw-token">')[1].split("<")[0]
    assert split_token(raw) == (token.prefix, raw) and hash_token(raw) == token.token_hash
    assert token.expires_at is not None
    # The list afterwards shows the prefix but never the raw value
    listing = client.get(reverse("tokens")).content.decode()
    assert token.prefix in listing and raw not in listing
    response = client.post(reverse("token_revoke", args=[token.pk]))
    assert response["Location"] == reverse("tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_cannot_revoke_someone_elses_token_from_the_page(client, as_user, tech_a, read_token):
    token, _ = read_token
    as_user(tech_a)
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
