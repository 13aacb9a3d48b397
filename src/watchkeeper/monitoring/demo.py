"""Demo data of monitoring (loaded by `watchkeeper demo`, see core/demo.py): the default
policies, a few network checks and heartbeat jobs. The devices, their readings and the
alerts they raise come from the simulated fleet (agents/simulator), which checks in through
the agent API once the server runs. Idempotent: each object is looked up by name first."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from watchkeeper.core.demo import ACTOR, DemoContext, loader

from . import actions, defaults
from .choices import CheckKind, Scope
from .heartbeats import actions as heartbeats
from .heartbeats.models import HeartbeatJob
from .models import Policy

NETWORK_POLICY = "Network: office services"
# name, kind, config (the targets are on this machine, so the demo runs offline)
NETWORK_CHECKS = [
    ("Gateway reachable", CheckKind.PING, {"host": "127.0.0.1", "count": 2,
                                           "latency_warning": 100}),
    ("Document server (DMS) port", CheckKind.TCP, {"host": "127.0.0.1", "port": 1,
                                                   "latency_warning": 500}),
]
# client slug, job name, period (s), grace (s), started this long ago (None: now)
HEARTBEATS = [
    ("northwind-freight-logistics", "Dispatch sync (every 5 min)", 300, 120, None),
    ("kessler-ortiz-llp", "Nightly DMS backup", 86400, 3600, timedelta(days=2)),
    ("harbour-view-dental", "Imaging archive copy", 3600, 900, None),
]
# The heartbeat jobs the simulated fleet pings on every round (the others go late).
PINGED = {"Dispatch sync (every 5 min)", "Imaging archive copy"}


@loader("monitoring", order=300)
def monitoring_data(ctx: DemoContext) -> None:
    installed = defaults.install(actor=ACTOR)
    if installed:
        ctx.count("default policies", len(installed))
    kessler = ctx.clients.get("kessler-ortiz-llp")
    if kessler is not None and not Policy.objects.filter(name=NETWORK_POLICY).exists():
        # The demo's targets are this machine: allow its loopback for this client's probes
        # (core/netguard.py refuses loopback unless an admin allowed it).
        from watchkeeper.core.actions import update_object

        update_object(actor=ACTOR, obj=kessler, probe_networks=["127.0.0.0/8", "::1/128"])
        policy = actions.create_policy(actor=ACTOR, name=NETWORK_POLICY, client=kessler,
                                       is_enabled=True, ticket_severities=["critical"],
                                       description="Services the office depends on.")
        for name, kind, config in NETWORK_CHECKS:
            actions.add_check(actor=ACTOR, policy=policy, name=name, kind=kind, config=config,
                              interval_seconds=60, fail_after=2, recover_after=1)
        actions.assign_policy(actor=ACTOR, policy=policy, scope=Scope.CLIENT, target=kessler)
        ctx.count("network checks", len(NETWORK_CHECKS))
    for slug, name, period, grace, ago in HEARTBEATS:
        client = ctx.clients.get(slug)
        if client is None or HeartbeatJob.objects.filter(client=client, name=name).exists():
            continue
        heartbeats.create_heartbeat(actor=ACTOR, client=client, name=name,
                                    period_seconds=period, grace_seconds=grace,
                                    now=timezone.now() - ago if ago else None)
        ctx.count("heartbeat jobs")


def ping_heartbeats(server: str) -> int:
    """GET the URL of each heartbeat job the demo keeps alive (the others go late)."""
    import httpx

    from .heartbeats.models import HeartbeatJob

    sent = 0
    for uid in HeartbeatJob.objects.filter(name__in=PINGED).values_list("uid", flat=True):
        try:
            httpx.get(f"{server.rstrip('/')}/hb/{uid}", timeout=10)
            sent += 1
        except httpx.HTTPError as exc:
            logging.getLogger(__name__).warning("heartbeat ping failed: %s", exc)
    return sent
