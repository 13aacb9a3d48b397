"""Issue 11, defect 1: a live agent's device must stay online everywhere the device's
last-seen time is read (device list, `is:offline`, the API, the portal health count), on
both check-in paths (the Django view and the lean path's batch writer).

The device's last_seen_at used to be refreshed only when the *agent's* previous check-in was
older than the touch interval, which an agent checking in every 60 s never is: 15 minutes
after its first check-in the device showed as offline while the agent was live."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from tests.conftest import sign_in
from tests.factories import make_user
from tests.test_agents_ingest import make_signed, metrics_batch
from watchkeeper.agents.checkin.writer import DEVICE_TOUCH_SECONDS
from watchkeeper.core.choices import Role
from watchkeeper.inventory.models import Device
from watchkeeper.inventory.selectors import ONLINE_WINDOW


@pytest.fixture(params=["django", "lean"])
def live(request, client, db, settings):
    settings.AGENT_BATCH_WRITER = "inline"
    settings.AGENT_LEAN_CHECKIN = request.param == "lean"
    return make_signed(client, request.param, name="Lighthouse Ltd")


def _device_list(http, q: str = "") -> str:
    return http.get("/devices/", {"q": q}).content.decode()


def test_an_agent_checking_in_every_minute_stays_online_for_twenty_minutes(live, client):
    agent = live.agent
    tech = make_user("lead@msp.test", Role.TECHNICIAN)
    tech.assigned_clients.add(agent.client)
    portal = make_user("pat@lighthouse.test", Role.CLIENT_USER, client=agent.client)
    name = Device.objects.get(pk=agent.device_id).name
    start = timezone.now()
    with freeze_time(start) as clock:
        # Given an agent checking in every 60 s for 20 minutes (metrics only, no inventory)
        for seq in range(1, 21):
            response = live.post(metrics_batch(seq))
            assert response.status_code == 200, response.content
            clock.tick(timedelta(seconds=60))
        # one more check-in a second before we look
        assert live.post(metrics_batch(21)).status_code == 200
        clock.tick(timedelta(seconds=1))
        device = Device.objects.get(pk=agent.device_id)
        # Then the device's last-seen time follows the agent's (within the touch interval)
        assert timezone.now() - device.last_seen_at <= timedelta(seconds=DEVICE_TOUCH_SECONDS)
        # and the device shows online in the list, not under is:offline
        http = sign_in(client, tech)
        page = _device_list(http)
        assert name in page and "✓ Online" in page and "✕ Offline" not in page
        assert name not in _device_list(http, "is:offline")
        assert name in _device_list(http, "is:online")
        # in the API, with the same filters
        api = http.get(f"/api/v1/devices/{agent.device_id}/").json()
        assert api["online"] is True
        offline = http.get("/api/v1/devices/", {"seen": "offline"}).json()["results"]
        assert agent.device_id not in [d["id"] for d in offline]
        # and in the client portal's health count
        client.logout()
        sign_in(client, portal)
        body = client.get("/portal/tickets/").content.decode()
        assert 'Online</span><span class="tile-value">1<' in body
        assert 'Offline</span><span class="tile-value">0<' in body


def test_the_device_is_not_rewritten_on_every_check_in(live):
    """The touch interval is measured against the device's own last_seen_at: a fleet of
    60-second agents does not rewrite the inventory's hot row every minute."""
    start = timezone.now()
    with freeze_time(start) as clock:
        assert live.post(metrics_batch(1)).status_code == 200
        first = Device.objects.get(pk=live.agent.device_id).last_seen_at
        clock.tick(timedelta(seconds=60))
        assert live.post(metrics_batch(2)).status_code == 200
        assert Device.objects.get(pk=live.agent.device_id).last_seen_at == first
        clock.tick(timedelta(seconds=DEVICE_TOUCH_SECONDS))
        assert live.post(metrics_batch(3)).status_code == 200
        assert Device.objects.get(pk=live.agent.device_id).last_seen_at == timezone.now()


def test_touch_interval_leaves_room_for_the_agent_interval_inside_the_online_window(settings):
    # A device touched at most every DEVICE_TOUCH_SECONDS by agents checking in every
    # AGENT_INTERVAL (+10 % jitter) is never older than the online window.
    slowest = timedelta(seconds=DEVICE_TOUCH_SECONDS + 1.1 * settings.AGENT_INTERVAL)
    assert slowest < ONLINE_WINDOW
