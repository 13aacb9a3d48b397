"""Tenant-isolation factories of the agents app (see tests/tenancy_fixtures.py)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from django.utils import timezone

from tests.tenancy_fixtures import factory
from watchkeeper.agents import actions
from watchkeeper.agents.choices import CommandStatus
from watchkeeper.agents.models import (
    Agent,
    AgentNonce,
    Command,
    EnrollmentToken,
    MetricName,
    MetricSample,
    QuarantinedPayload,
    ScriptRun,
)
from watchkeeper.core.models import Client, Site


def _site(client: Client, tag: str) -> Site:
    site, _ = Site.objects.get_or_create(client=client, name=f"{tag} Agent Site")
    return site


@factory(EnrollmentToken)
def _token(client: Client, tag: str) -> EnrollmentToken:
    token, _ = actions.create_enrollment_token(actor=None, client=client,
                                               site=_site(client, tag), note=f"{tag} token")
    return token


@factory(Agent)
def _agent(client: Client, tag: str) -> Agent:
    token = _token(client, tag)
    agent = actions.enroll_agent(
        token=token, public_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        facts={"hostname": f"{tag} Agent Host"})
    return actions.approve_agent(actor=None, agent=agent)


@factory(AgentNonce)
def _nonce(client: Client, tag: str) -> AgentNonce:
    return AgentNonce.objects.create(agent=_agent(client, tag), nonce=secrets.token_hex(16),
                                     expires_at=timezone.now() + timedelta(minutes=10))


@factory(MetricSample)
def _sample(client: Client, tag: str) -> MetricSample:
    agent = _agent(client, tag)
    metric, _ = MetricName.objects.get_or_create(name=f"{tag}.metric")
    return MetricSample.objects.create(device_id=agent.device_id, metric=metric,
                                       ts=timezone.now(), value=42.0)


@factory(QuarantinedPayload)
def _quarantined(client: Client, tag: str) -> QuarantinedPayload:
    return QuarantinedPayload.objects.create(agent=_agent(client, tag), path="/agent/v1/checkin",
                                             reason=f"{tag} malformed", body=f'{{"{tag}": 1}}')


def _script():
    from watchkeeper.agents.models import Script

    script = Script.objects.filter(name="Isolation probe").first()
    return script or actions.create_script(actor=None, name="Isolation probe",
                                           language="bash", body="echo probe")


@factory(ScriptRun)
def _run(client: Client, tag: str) -> ScriptRun:
    agent = _agent(client, tag)
    return actions.run_script(actor=None, version=_script().current, target_kind="device",
                              target=agent.device)


@factory(Command)
def _command(client: Client, tag: str) -> Command:
    run = _run(client, tag)
    command = run.commands.get()
    Command.objects.filter(pk=command.pk).update(status=CommandStatus.FAILED, exit_code=1,
                                                 stdout=f"{tag} output")
    command.refresh_from_db()
    return command
