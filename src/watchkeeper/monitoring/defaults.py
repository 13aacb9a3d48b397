"""Default policies of a new install: what an MSP wants watched on every managed device
before it has written a policy of its own — the agent going silent, disks, memory, CPU,
automatic services that stopped, a pending reboot, and (as a template to point at a site)
certificate expiry.

`install()` creates them through the same actions as the policy page (versioned, audited),
assigned everywhere and enabled, so a dead agent raises an alert from the first day. It
runs at first start (`watchkeeper up` on an empty database, and the demo); they are then
ordinary policies: edit, disable or delete them like any other. Idempotent by name: a
policy that already exists (or was renamed by the MSP and re-created) is left alone, and
nothing runs again once the first owner exists.
"""

from __future__ import annotations

from django.db import transaction

from . import actions
from .choices import CheckKind, Scope, State
from .models import Policy

ACTOR = "watchkeeper defaults"

# name, description, ticket severities, [(check name, kind, config, fail_after, recover_after)]
DEFAULTS = [
    ("Default: agent offline",
     "Critical when a device's agent stops checking in (after the agents' offline delay).",
     [],
     [("Agent offline", CheckKind.AGENT_OFFLINE, {"severity": State.CRITICAL}, 1, 1)]),
    ("Default: disk space",
     "Warning at 85 % used, critical at 95 % used, on the fullest drive.",
     [State.CRITICAL],
     [("Disk space", CheckKind.DISK, {"warning": 85, "critical": 95}, 2, 2),
      ("Disk full forecast", CheckKind.DISK_FORECAST,
       {"days_warning": 14, "days_critical": 3, "lookback_days": 7}, 1, 1)]),
    ("Default: memory",
     "Memory sustained above 90 % (warning) or 98 % (critical) for 15 minutes.",
     [], [("Memory", CheckKind.MEMORY, {"warning": 90, "critical": 98,
                                        "window_minutes": 15}, 3, 2)]),
    ("Default: CPU",
     "CPU sustained above 90 % (warning) or 98 % (critical) for 15 minutes.",
     [], [("CPU", CheckKind.CPU, {"warning": 90, "critical": 98, "window_minutes": 15}, 3,
           2)]),
    ("Default: stopped services",
     "Any service set to start automatically that is not running.",
     [], [("Automatic services", CheckKind.SERVICE,
           {"automatic": True, "severity": State.WARNING,
            "ignore": ["gupdate", "gupdatem", "edgeupdate", "MapsBroker", "sppsvc",
                       "RemoteRegistry", "tiledatamodelsvc", "WbioSrvc"]}, 2, 1)]),
    ("Default: reboot pending",
     "Warning while the operating system waits for a reboot.",
     [], [("Reboot pending", CheckKind.REBOOT, {"severity": State.WARNING}, 1, 1)]),
    ("Default: SMART",
     "Drives reporting pre-failure SMART attributes or a failed self-assessment.",
     [State.CRITICAL], [("SMART health", CheckKind.SMART, {}, 1, 1)]),
]
# A TLS check watches a named site: this one is a disabled template; set the host (or
# copy it) and enable it.
CERTIFICATE = ("Default: certificate expiry",
               "Warns 21 days and alerts 7 days before a site's TLS certificate expires. "
               "Set the host name on the check, then enable it.")


def install(actor=ACTOR) -> list[Policy]:
    """Create the default policies that do not exist yet; the ones created."""
    created = []
    with transaction.atomic():
        existing = set(Policy.objects.filter(client__isnull=True).values_list("name",
                                                                             flat=True))
        for name, description, tickets, checks in DEFAULTS:
            if name in existing:
                continue
            policy = actions.create_policy(actor=actor, name=name, description=description,
                                           is_enabled=True, ticket_severities=tickets)
            for check_name, kind, config, fail_after, recover_after in checks:
                actions.add_check(actor=actor, policy=policy, name=check_name, kind=kind,
                                  config=config, fail_after=fail_after,
                                  recover_after=recover_after)
            actions.assign_policy(actor=actor, policy=policy, scope=Scope.GLOBAL)
            created.append(policy)
        name, description = CERTIFICATE
        if name not in existing:
            policy = actions.create_policy(actor=actor, name=name, description=description,
                                           is_enabled=True, ticket_severities=[])
            actions.add_check(actor=actor, policy=policy, name="Certificate expiry",
                              kind=CheckKind.TLS, is_enabled=False, interval_seconds=3600,
                              config={"port": 443, "days_warning": 21, "days_critical": 7},
                              fail_after=1, recover_after=1)
            created.append(policy)
    return created
