"""The command signer: its key file, its public key, and what it refuses to sign."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import call_command
from django.utils import timezone

from watchkeeper.agents import actions
from watchkeeper.agents.choices import CommandStatus
from watchkeeper.agents.commands import signer
from watchkeeper.agents.models import Command, SignerKey
from watchkeeper.core.models import Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_file(tmp_path, settings):
    settings.SIGNER_KEY_FILE = str(tmp_path / "signer" / "ed25519.key")
    return tmp_path / "signer" / "ed25519.key"


@pytest.fixture
def agent(client_a):
    site = Site.objects.create(client=client_a, name="HQ")
    token, _ = actions.create_enrollment_token(actor="t", client=client_a, site=site,
                                               auto_approve=True)
    return actions.enroll_agent(token=token, public_key=base64.b64encode(b"\x01" * 32)
                                .decode(), facts={"hostname": "pc"})


def test_signer_creates_a_private_key_file_and_publishes_only_the_public_key(key_file):
    call_command("signer", "--init")
    assert key_file.stat().st_mode & 0o777 == 0o600
    published = SignerKey.objects.get(is_active=True)
    assert base64.b64decode(published.public_key) == signer.public_bytes(
        signer.load_or_create_key())
    assert "PRIVATE" not in published.public_key


def test_signer_refuses_a_key_file_others_can_read(key_file):
    signer.load_or_create_key()
    os.chmod(key_file, 0o644)
    with pytest.raises(PermissionError):
        signer.load_or_create_key()


def test_signer_signs_queued_commands_and_expires_stale_ones(key_file, agent):
    script = actions.create_script(actor="t", name="s", language="bash", body="echo hi")
    run = actions.run_script(actor="t", version=script.current, target_kind="device",
                             target=agent.device)
    stale = Command.objects.create(agent=agent, nonce="f" * 32, language="bash", body="x",
                                   expires_at=timezone.now() - timedelta(seconds=1))
    call_command("signer", "--once")
    command = Command.objects.get(run=run)
    assert command.status == CommandStatus.SIGNED
    # The column holds the payload sealed; opened, it is the exact text that was signed
    assert not command.payload.startswith("{")
    text = signer.open_payload(command.payload)
    payload = json.loads(text)
    assert payload["agent"] == str(agent.uid) and payload["nonce"] == command.nonce
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(
        SignerKey.objects.get().public_key))
    public.verify(base64.b64decode(command.signature), text.encode())
    stale.refresh_from_db()
    assert stale.status == CommandStatus.EXPIRED and not stale.signature
    agent.refresh_from_db()
    assert agent.commands_waiting and agent.commands_version == 1


def test_check_in_clears_the_waiting_flag_only_if_nothing_was_signed_meanwhile(key_file, agent):
    from watchkeeper.agents.checkin import ingest
    from watchkeeper.agents.models import Agent

    # Given an agent flagged as having commands, read by a check-in at version 1
    Agent.objects.filter(pk=agent.pk).update(commands_waiting=True, commands_version=1)
    agent.refresh_from_db()
    # When the signer signs something for it before the check-in clears the flag
    Agent.objects.filter(pk=agent.pk).update(commands_version=2)
    assert ingest.pending_commands(agent) == []
    # Then the flag stays set; a check-in that read the current version clears it
    assert Agent.objects.get(pk=agent.pk).commands_waiting
    agent.refresh_from_db()
    ingest.pending_commands(agent)
    assert not Agent.objects.get(pk=agent.pk).commands_waiting


def test_web_code_never_reads_the_signer_key(key_file):
    # No module the web process loads refers to the key file: only the signer module and
    # the signer's own command do.
    from pathlib import Path

    import watchkeeper.agents as app

    root = Path(app.__file__).parent
    readers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "SIGNER_KEY_FILE" in p.read_text())
    assert readers == ["commands/signer.py", "management/commands/signer.py"]


def test_migration_seals_payloads_signed_before_payloads_were_sealed(agent):
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "watchkeeper.agents.migrations.0003_seal_command_payloads")
    text = '{"args":["S3cr3t!"],"v":1}'
    command = Command.objects.create(agent=agent, nonce="e" * 32, language="bash", body="x",
                                     payload=text, status=CommandStatus.SIGNED,
                                     expires_at=timezone.now() + timedelta(minutes=5))
    migration.seal_existing(apps, None)
    command.refresh_from_db()
    assert "S3cr3t!" not in command.payload
    assert signer.open_payload(command.payload) == text
    migration.open_existing(apps, None)  # and back, for a rollback
    command.refresh_from_db()
    assert command.payload == text
