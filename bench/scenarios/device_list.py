"""device_list: the device list at 10,000 devices over 100 clients — the first page, a text
search that hits an interface IP, a filtered and sorted page, the API list with a serial
search, and one device page — as an owner who sees every client."""

from __future__ import annotations

import json

from bench.harness import BenchError, Scenario, Target
from bench.scenarios.api_dashboard import _seed_owner, _session_cookie

CLIENTS = 100
DEVICES_PER_CLIENT = 100
AGENT_DEVICES_PER_CLIENT = 5  # with interfaces and software reported by an "agent"
PACKAGES = 80
KINDS = ("workstation", "laptop", "server", "vm", "printer", "network")
SEARCH_IP = "10.42.7.3"  # client 7's third agent device


def _csv(client_no: int) -> bytes:
    lines = ["name,site,kind,status,serial,primary_mac,primary_ip,manufacturer,model,"
             "os_name,os_version,purchase_date,warranty_end,location"]
    for n in range(DEVICES_PER_CLIENT):
        kind = KINDS[n % len(KINDS)]
        lines.append(
            f"c{client_no:03d}-{kind}-{n:03d},Site {1 + n % 2},{kind},"
            f"{'retired' if n % 17 == 0 else 'deployed'},SN{client_no:03d}{n:04d},"
            f"02:00:{client_no // 256:02x}:{client_no % 256:02x}:{n // 256:02x}:{n % 256:02x},"
            f"192.168.{client_no}.{n + 1},Dell Inc.,OptiPlex {7000 + n % 4 * 10},"
            f"{'Windows 11' if n % 3 else 'Ubuntu'},{'23H2' if n % 3 else '24.04'},"
            f"2023-0{1 + n % 9}-1{n % 10},2027-0{1 + n % 9}-1{n % 10},Floor {n % 4}")
    return ("\n".join(lines) + "\n").encode()


def _seed_inventory(owner) -> int:
    from django.utils import timezone

    from watchkeeper.core import actions
    from watchkeeper.inventory import services
    from watchkeeper.inventory.imports import importers

    sample_device = 0
    for i in range(1, CLIENTS + 1):
        client = actions.create_client(actor=owner, name=f"Client {i:03d} Ltd")
        for s in (1, 2):
            actions.create_site(actor=owner, client=client, name=f"Site {s}")
        run = importers.upload(actor=owner, client=client, filename=f"client{i}.csv",
                               raw=_csv(i))
        run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
        run = importers.apply(actor=owner, run=run)
        if run.report["counts"]["created"] != DEVICES_PER_CLIENT:
            raise BenchError(f"seed import of client {i}: {run.report['errors'][:3]}")
        for a in range(1, AGENT_DEVICES_PER_CLIENT + 1):
            ref = f"bench-agent-{i}-{a}"
            device = services.register_agent_device(client_id=client.pk, site_id=None,
                                                    hostname=f"agent-{i:03d}-{a}",
                                                    agent_ref=ref)
            services.apply_agent_inventory(
                device_id=device.pk, agent_ref=ref, observed_at=timezone.now(),
                sections={
                    "system": {"os_name": "Debian GNU/Linux", "os_version": "12",
                               "serial": f"AGENT-{i}-{a}", "manufacturer": "QEMU",
                               "model": "Standard PC", "reboot_required": a == 1,
                               "pending_update_count": a},
                    "interfaces": [{"name": "eth0", "mac": f"52:54:00:{i:02x}:00:{a:02x}",
                                    "ipv4": [f"10.42.{i}.{a}"], "ipv6": []}],
                    "software": [{"name": f"package-{p}", "version": f"1.{p}",
                                  "source": "dpkg"} for p in range(PACKAGES)],
                })
            if i == 7 and a == 3:
                sample_device = device.pk
    return sample_device


def _expect(text: str, *needles: str) -> None:
    for needle in needles:
        if needle not in text:
            raise BenchError(f"response lacks {needle!r}")
    if 'name="password"' in text or 'name="code"' in text:
        raise BenchError("answered a sign-in form instead of the page")


class DeviceList(Scenario):
    name = "device_list"
    description = (
        f"The device list with {CLIENTS * (DEVICES_PER_CLIENT + AGENT_DEVICES_PER_CLIENT):,} "
        f"devices over {CLIENTS} clients (seeded through the CSV import and the agent "
        f"inventory service; {AGENT_DEVICES_PER_CLIENT} per client with interfaces and "
        f"{PACKAGES} packages): first page of 50, a search by an interface IP, a filtered and "
        f"sorted page, the API list searched by serial, and one device page; as an owner."
    )

    def seed(self) -> dict:
        from watchkeeper.core import accounts
        from watchkeeper.core.choices import TokenScope

        owner = _seed_owner()
        sample = _seed_inventory(owner)
        _, raw_token = accounts.create_token(actor=owner, user=owner, name="benchmark",
                                             scope=TokenScope.READ)
        cookie_name, session_key = _session_cookie(owner)
        return {"token": raw_token, "cookie": f"{cookie_name}={session_key}",
                "device": sample}

    def targets(self, seeded: dict) -> list[Target]:
        total = CLIENTS * (DEVICES_PER_CLIENT + AGENT_DEVICES_PER_CLIENT)
        html = {"Cookie": seeded["cookie"], "Accept": "text/html"}

        def first_page(status, body):
            _expect(body.decode(errors="replace"), f"{total} devices", "agent-001-1")

        def ip_search(status, body):
            _expect(body.decode(errors="replace"), "agent-007-3", "1 device")

        def filtered(status, body):
            _expect(body.decode(errors="replace"), "c042-laptop-")

        def api_serial(status, body):
            data = json.loads(body)
            if data.get("count") != 1 or data["results"][0]["serial"] != "SN0500042":
                raise BenchError(f"API serial search returned {data.get('count')} devices")

        def device_page(status, body):
            _expect(body.decode(errors="replace"), "agent-007-3", "Client 007 Ltd")

        return [
            Target("GET /devices/ (first page of 50)", "/devices/", headers=html,
                   validate=first_page),
            Target("GET /devices/?q=<interface IP>", f"/devices/?q={SEARCH_IP}",
                   headers=html, validate=ip_search),
            Target("GET /devices/ client+kind filter, sort -last_seen",
                   "/devices/?client=42&kind=laptop&status=deployed&sort=-last_seen",
                   headers=html, validate=filtered),
            Target("GET /api/v1/devices/?q=<serial> (token)", "/api/v1/devices/?q=SN0500042",
                   headers={"Authorization": f"Bearer {seeded['token']}",
                            "Accept": "application/json"}, validate=api_serial),
            Target("GET /devices/<id>/ (device page)", f"/devices/{seeded['device']}/",
                   headers=html, validate=device_page),
        ]


SCENARIO = DeviceList()
