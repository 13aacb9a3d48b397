"""The living demo: the simulated fleet of the demo clients against a running server.

`run(server=..., devices=N)` enrolls N simulated devices over the demo clients with
auto-approving enrollment tokens (created through the same action as the enrollment page),
sends each one's inventory and readings through the agent API, then keeps them checking in
every minute (offline laptops stay silent and go offline; the history of the last day is
sent between rounds), pings the demo's heartbeat jobs over HTTP, and runs the demo's scripts
on a few devices once they are enrolled (the signer signs, the simulated agents answer).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from .fleet import Fleet
from .profiles import ClientInfo, Profile, fleet

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here

ACTOR = "demo"
DEFAULT_DEVICES = 240
SCRIPTS = [
    ("Clear Windows print queue", "powershell",
     "Stop-Service Spooler -Force\nRemove-Item C:\\Windows\\System32\\spool\\PRINTERS\\* "
     "-Force\nStart-Service Spooler\n", "Restarts the spooler with an empty queue."),
    ("Disk cleanup (temp files)", "powershell",
     "Get-ChildItem $env:TEMP -Recurse | Remove-Item -Force -Recurse -ErrorAction "
     "SilentlyContinue\n", "Frees space on the system drive."),
    ("Check uptime", "bash", "uptime\n", "Prints how long the machine has been up."),
]


def demo_clients() -> list[ClientInfo]:
    from watchkeeper.core.demo import CLIENTS
    from watchkeeper.core.models import Client, Site

    names = [c["name"] for c in CLIENTS]
    clients = list(Client.objects.filter(name__in=names).order_by("id"))
    sites: dict[int, list[int]] = {}
    for site_id, client_id in Site.objects.filter(client__in=clients).order_by(
            "id").values_list("id", "client_id"):
        sites.setdefault(client_id, []).append(site_id)
    return [ClientInfo(c.pk, c.name, c.timezone or "UTC", tuple(sites.get(c.pk, ())))
            for c in clients if sites.get(c.pk)]


def token_source() -> Callable[[Profile], str]:
    """One auto-approving token per site, created when first needed."""
    from watchkeeper.agents import actions
    from watchkeeper.core.models import Site

    raw: dict[int, str] = {}

    def token_for(profile: Profile) -> str:
        if profile.site_id not in raw:
            site = Site.objects.select_related("client").get(pk=profile.site_id)
            _, raw[profile.site_id] = actions.create_enrollment_token(
                actor=ACTOR, client=site.client, site=site, hours=2, auto_approve=True,
                note="Demo fleet (simulated agents)")
        return raw[profile.site_id]

    return token_for


def state_path() -> Path:
    return Path(settings.DATA_DIR) / "demo-fleet" / "state.json"


def build(server: str, devices: int = DEFAULT_DEVICES, *, history_hours: int = 24) -> Fleet:
    return Fleet(server=server, profiles=fleet(demo_clients(), devices),
                 state_path=state_path(), token_for=token_source(),
                 history_hours=history_hours)



def run_scripts() -> int:
    """The demo's scripts, each run once on a device of the demo (through run_script: the
    signer signs them, the simulated agents report results on their next check-in)."""
    from watchkeeper.agents import actions
    from watchkeeper.agents.choices import AgentStatus
    from watchkeeper.agents.models import Agent, Script, ScriptRun

    started = 0
    for name, language, body, description in SCRIPTS:
        script = Script.objects.filter(name=name).first()
        if script is None:
            script = actions.create_script(actor=ACTOR, name=name, language=language,
                                           body=body, description=description)
        if ScriptRun.objects.filter(script_version__script=script).exists():
            continue
        agent = (Agent.objects.filter(status=AgentStatus.APPROVED, device__isnull=False,
                                      hostname__contains="-SRV" if language == "bash"
                                      else "-WS")
                 .select_related("device").order_by("id").first())
        if agent is None:
            continue
        try:
            actions.run_script(actor=ACTOR, version=script.current, target_kind="device",
                               target=agent.device)
            started += 1
        except actions.ActionError as exc:
            log.warning("demo script %s not run: %s", name, exc)
    return started



def after_start(server: str) -> None:
    """What needs the enrolled devices: script runs, then what the other apps provide as
    `demo.after_fleet_start` (core.hooks: monitoring's heartbeat pings, the helpdesk's
    billing run)."""
    from watchkeeper.core import hooks

    run_scripts()
    for step in hooks.every("demo.after_fleet_start"):
        step(server)


def each_round(server: str) -> None:
    """What the other apps provide as `demo.fleet_round` (monitoring's heartbeat pings)."""
    from watchkeeper.core import hooks

    for step in hooks.every("demo.fleet_round"):
        step(server)


def run(server: str, devices: int = DEFAULT_DEVICES, *, once: bool = False,
        interval: float = 60.0, stop: threading.Event | None = None,
        out: Callable[[str], None] = print, history_hours: int = 24) -> Fleet:
    fleet_ = build(server, devices, history_hours=history_hours)
    if once:
        fleet_.start()
        after_start(server)
        while fleet_.backfill(budget=500):
            pass
        fleet_.round()  # hands out the script commands, reports their results
        fleet_.save_state()
        fleet_.http.close()
        out(f"Demo fleet: {len(fleet_.agents)} devices checked in ({dict(fleet_.counters)}).")
        return fleet_
    stop = stop or threading.Event()

    out(f"Demo fleet: {devices} simulated devices checking in to {server} every "
        f"{interval:g} s")
    fleet_.run(stop, interval=interval, on_start=lambda _f: after_start(server),
               on_round=lambda _f: each_round(server))
    return fleet_
