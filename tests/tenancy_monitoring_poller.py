"""Tenant-isolation factories of the monitoring app's poller side (see
tests/tenancy_fixtures.py): check-run history (runs, rollups, transitions), heartbeat jobs
and calls, metric rollups."""

from __future__ import annotations

from django.utils import timezone

from tests.tenancy_fixtures import factory
from watchkeeper.agents.models import MetricName
from watchkeeper.core.models import Client
from watchkeeper.inventory import actions as inventory_actions
from watchkeeper.monitoring import actions as monitoring_actions
from watchkeeper.monitoring.heartbeats import actions as heartbeats
from watchkeeper.monitoring.models import (
    CheckRollup,
    HeartbeatJob,
    HeartbeatPing,
    MetricRollup,
    Policy,
    PollSample,
    PollTransition,
)


def _network_check(client: Client, tag: str):
    policy = (Policy.objects.filter(client=client, name=f"{tag} Network").first()
              or monitoring_actions.create_policy(actor=None, name=f"{tag} Network",
                                                  client=client))
    check = policy.checks.filter(name=f"{tag} Web").first()
    return check or monitoring_actions.add_check(
        actor=None, policy=policy, name=f"{tag} Web", kind="http",
        config={"url": f"https://{tag.lower()}.example.test/"})


@factory(PollSample)
def _poll_sample(client: Client, tag: str) -> PollSample:
    return PollSample.objects.create(check_template=_network_check(client, tag),
                                     client=client, ts=timezone.now(), state="critical",
                                     value=12.5, message=f"{tag} HTTP 503")


@factory(CheckRollup)
def _check_rollup(client: Client, tag: str) -> CheckRollup:
    bucket = timezone.now().replace(minute=0, second=0, microsecond=0)
    return CheckRollup.objects.create(resolution=300, check_template=_network_check(client, tag),
                                      client=client, bucket=bucket, runs=5, critical=5, count=5,
                                      total=62.5, minimum=12.5, maximum=12.5)


@factory(PollTransition)
def _poll_transition(client: Client, tag: str) -> PollTransition:
    return PollTransition.objects.create(check_template=_network_check(client, tag),
                                         client=client, ts=timezone.now(), state="critical",
                                         previous="ok", value=12.5,
                                         message=f"{tag} HTTP 503")


@factory(HeartbeatJob)
def _heartbeat(client: Client, tag: str) -> HeartbeatJob:
    job = HeartbeatJob.objects.filter(client=client, name=f"{tag} Backup").first()
    return job or heartbeats.create_heartbeat(actor=None, client=client, name=f"{tag} Backup",
                                              period_seconds=86400)


@factory(HeartbeatPing)
def _heartbeat_ping(client: Client, tag: str) -> HeartbeatPing:
    job = _heartbeat(client, tag)
    return HeartbeatPing.objects.create(job=job, kind="success", body=f"{tag} backup done",
                                        user_agent=f"{tag} agent")


@factory(MetricRollup)
def _rollup(client: Client, tag: str) -> MetricRollup:
    device = inventory_actions.create_device(actor=None, client=client,
                                             name=f"{tag} Rollup Device")
    metric, _ = MetricName.objects.get_or_create(name=f"{tag}.disk.used_percent")
    bucket = timezone.now().replace(minute=0, second=0, microsecond=0)
    return MetricRollup.objects.create(resolution=300, device=device, metric=metric,
                                       bucket=bucket, count=1, total=50.0, minimum=50.0,
                                       maximum=50.0)
