"""`watchkeeper createuser` and `watchkeeper token create|list|revoke`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from watchkeeper.core import accounts
from watchkeeper.core.api.auth import hash_token, split_token
from watchkeeper.core.choices import AuditAction, Role, TokenScope
from watchkeeper.core.models import ApiToken, AuditEntry, User


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_createuser_prints_a_working_one_time_password(db):
    # When an operator creates the first owner
    out, err = run("createuser", "--email", "Ann@MSP.test", "--role", "owner", "--name", "Ann")
    # Then stdout holds only the one-time password, which works and must be changed
    password = out.strip()
    assert "\n" not in password and len(password) >= 12
    user = User.objects.get(email="ann@msp.test")
    assert user.check_password(password) and user.must_change_password
    assert user.role == Role.OWNER and user.name == "Ann"
    assert "ann@msp.test" in err
    # And the creation is audited as done by the CLI
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_id=str(user.pk))
    assert entry.actor is None and entry.actor_label == "cli:createuser"


def test_createuser_client_user_needs_a_known_client(client_b):
    with pytest.raises(CommandError, match="No client named"):
        run("createuser", "--email", "x@b.test", "--role", "client_user", "--client", "Nope")
    with pytest.raises(CommandError, match="exactly one --client"):
        run("createuser", "--email", "x@b.test", "--role", "client_user")
    run("createuser", "--email", "x@b.test", "--role", "client_user", "--client",
        "borealis logistics")
    assert User.objects.get(email="x@b.test").client == client_b


def test_createuser_assigns_technicians_to_clients(client_a, client_b):
    run("createuser", "--email", "t@msp.test", "--role", "technician",
        "--client", "Acme Dental", "--client", client_b.slug)
    user = User.objects.get(email="t@msp.test")
    assert set(user.assigned_clients.all()) == {client_a, client_b}


def test_createuser_refuses_duplicates(owner):
    with pytest.raises(CommandError, match="already exists"):
        run("createuser", "--email", owner.email, "--role", "admin")


def test_token_create_prints_only_the_raw_token(client, admin_user):
    out, err = run("token", "create", "--user", admin_user.email, "--scope", "read",
                   "--name", "nagios", "--expires-days", "30")
    raw = out.strip()
    parsed = split_token(raw)
    assert parsed is not None
    token = ApiToken.objects.get(prefix=parsed[0])
    assert token.token_hash == hash_token(raw) and token.name == "nagios"
    assert token.scope == TokenScope.READ and token.expires_at is not None
    # And it authenticates against the API
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert AuditEntry.objects.filter(action=AuditAction.TOKEN, actor_label="cli:token").exists()


def test_token_list_shows_tokens_without_secrets(admin_user):
    token, raw = accounts.create_token(actor=admin_user, user=admin_user, name="backup-job",
                                       scope=TokenScope.WRITE)
    out, _ = run("token", "list", "--user", admin_user.email)
    assert token.prefix in out and "backup-job" in out and "active" in out
    assert raw not in out and raw.split("_")[2] not in out


def test_token_revoke_by_prefix(client, admin_user):
    token, raw = accounts.create_token(actor=admin_user, user=admin_user, name="old",
                                       scope=TokenScope.READ)
    run("token", "revoke", token.prefix)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    out, _ = run("token", "list", "--user", admin_user.email)
    assert "revoked" in out
    with pytest.raises(CommandError, match="already revoked"):
        run("token", "revoke", raw)  # the full token is accepted as well


def test_token_commands_refuse_unknown_users_and_prefixes(db):
    with pytest.raises(CommandError, match="No user"):
        run("token", "create", "--user", "ghost@msp.test", "--scope", "read")
    with pytest.raises(CommandError, match="No token"):
        run("token", "revoke", "ffffffff")


def test_help_texts_explain_the_commands(db):
    from watchkeeper.core.management.commands import createuser, token

    create_help = createuser.Command().create_parser("watchkeeper", "createuser").format_help()
    assert "one-time password" in create_help and "--role" in create_help
    assert "client_user" in create_help
    parser = token.Command().create_parser("watchkeeper", "token")
    assert "prints only the raw token" in parser.format_help()
    assert "create" in parser.format_help() and "revoke" in parser.format_help()
