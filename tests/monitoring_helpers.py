"""Shared builders for the monitoring tests (H1's files)."""

from __future__ import annotations

from watchkeeper.inventory.models import Device
from watchkeeper.monitoring import actions
from watchkeeper.monitoring.choices import CheckKind, Scope


def make_device(client, name: str, site=None, **fields) -> Device:
    return Device.objects.create(client=client, name=name, site=site, **fields)


def disk_policy(actor, client=None, *, fail_after=1, recover_after=1, scope=Scope.GLOBAL,
                target=None, **policy_fields):
    policy = actions.create_policy(actor=actor, name="Servers", client=client,
                                   **policy_fields)
    check = actions.add_check(actor=actor, policy=policy, name="Disk space",
                              kind=CheckKind.DISK, config={"warning": 80, "critical": 90},
                              fail_after=fail_after, recover_after=recover_after)
    actions.assign_policy(actor=actor, policy=policy, scope=scope, target=target)
    return policy, check
