"""Browser: network checks (editor with Test now, detail with the history chart by range)
and heartbeats (URL with a working Copy button, call log), each screen checked by axe."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.monitoring_targets import HttpTarget
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.heartbeats import actions as heartbeats
from watchkeeper.monitoring.history import actions as rollups
from watchkeeper.monitoring.models import Check
from watchkeeper.monitoring.poller.engine import Poller

from .conftest import axe_check

pytestmark = pytest.mark.browser


def test_network_check_editor_test_now_and_detail_chart(signed_in_page, owner, client_a):
    mon_actions.create_policy(actor=None, name="Web sites", client=client_a)
    with HttpTarget() as target:
        page = signed_in_page(owner)
        page.goto("/monitoring/network/")
        expect(page.get_by_role("heading", level=1, name="Network checks")).to_be_visible()
        axe_check(page, "network checks, empty")
        page.get_by_role("link", name="New network check").click()
        page.get_by_label("Policy").select_option(index=1)
        page.get_by_label("Name", exact=True).fill("Portal")
        page.get_by_label("Kind").select_option("http")
        page.get_by_label("Configuration (JSON)").fill(
            json.dumps({"url": target.url("/ok"), "keyword": "nominal"}))
        # When "Test now" is pressed, the outcome shows above the form
        page.get_by_role("button", name="Test now").click()
        expect(page.get_by_role("status").first).to_contain_text("HTTP 200")
        axe_check(page, "network check editor with a test result")
        page.get_by_role("button", name="Save check").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Portal")
        # When the poller has run it twice, the chart and the table show the runs
        for _ in range(2):
            Check.objects.filter(name="Portal").update(next_run_at=timezone.now())
            # Playwright's sync API owns this thread's event loop: poll from another one.
            runner = threading.Thread(target=lambda: asyncio.run(Poller().run_once()))
            runner.start()
            runner.join()
        page.reload()
        expect(page.locator("#poll-samples tbody tr")).to_have_count(2)
        expect(page.locator("#poll-chart canvas")).to_have_count(1)
        axe_check(page, "network check detail with chart")
        # When the range is 7 days, the chart reads 5-minute buckets (rolled or, for the
        # last minutes, from the runs) and the state changes of the range are listed
        rollups.run_rollups()
        page.get_by_role("link", name="7 days").click()
        expect(page.locator("#chart-summary")).to_contain_text("5-minute buckets")
        expect(page.locator("#chart-summary")).to_contain_text("2 runs, 100.00 % ok")
        expect(page.get_by_role("link", name="7 days")).to_have_attribute("aria-current",
                                                                          "true")
        expect(page.locator("#poll-transitions tbody tr")).to_have_count(1)
        expect(page.locator("#poll-chart canvas")).to_have_count(1)
        axe_check(page, "network check detail, 7-day range")
        page.goto("/monitoring/network/")
        expect(page.locator("#network-checks-table")).to_contain_text("HTTP 200")
        axe_check(page, "network checks, one check")
    assert not page.js_errors, page.js_errors


def test_heartbeat_url_copy_and_log(signed_in_page, owner, client_a, live_server):
    job = heartbeats.create_heartbeat(actor=owner, client=client_a, name="Nightly backup",
                                      schedule="cron", cron="30 2 * * *", tz="Europe/Berlin")
    page = signed_in_page(owner)
    page.goto("/monitoring/heartbeats/")
    expect(page.locator("#heartbeats-table")).to_contain_text("Nightly backup")
    axe_check(page, "heartbeat list with form")
    page.get_by_role("link", name="Nightly backup").click()
    url = page.locator("#hb-url").input_value()
    assert url.endswith(f"/hb/{job.uid}")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#hb-copied")).not_to_be_empty()
    axe_check(page, "heartbeat detail, no calls")
    page.request.post(f"{live_server.url}/hb/{job.uid}", data="backup finished: 12 GB")
    page.reload()
    expect(page.locator("#hb-pings")).to_contain_text("backup finished: 12 GB")
    axe_check(page, "heartbeat detail with calls")
    assert not page.js_errors, page.js_errors
