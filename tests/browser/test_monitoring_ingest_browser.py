"""Browser: alert sources (ingestion tokens) — create one, see its token once, post an alert
with it, revoke it; axe on each state."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from watchkeeper.monitoring.models import Alert

from .conftest import axe_check

pytestmark = pytest.mark.browser


def test_alert_sources_create_token_once_post_and_revoke(signed_in_page, live_server, owner,
                                                         client_a):
    page = signed_in_page(owner)
    page.goto("/monitoring/ingest/")
    expect(page.get_by_role("heading", level=1, name="Alert sources")).to_be_visible()
    expect(page.get_by_text("No alert sources yet")).to_be_visible()
    axe_check(page, "alert sources, empty")
    # When a source is created for a client
    page.get_by_label("Client", exact=True).select_option(label=client_a.name)
    page.get_by_label("Name", exact=True).fill("Prometheus Alertmanager")
    page.get_by_role("button", name="Create source").click()
    # Then its token is shown once, and the source is listed
    token = page.get_by_label("Token", exact=True).input_value()
    assert token.startswith("wki_")
    expect(page.locator("#sources-table tbody tr")).to_have_count(1)
    axe_check(page, "alert sources, token shown")
    # And the token works for the ingestion endpoint
    r = httpx.post(f"{live_server.url}/api/v1/ingest/alerts", timeout=30,
                   headers={"Authorization": f"Bearer {token}"},
                   json={"resource": "fw01", "event": "vpn_down", "severity": "critical"})
    assert r.status_code == 202, r.text
    assert Alert.objects.get().client_id == client_a.pk
    page.goto("/monitoring/ingest/")
    expect(page.get_by_label("Token", exact=True)).to_have_count(0)
    # When it is revoked
    page.get_by_role("button", name="Revoke Prometheus Alertmanager").click()
    expect(page.locator("#sources-table")).to_contain_text("Revoked")
    axe_check(page, "alert sources, revoked")
    r = httpx.post(f"{live_server.url}/api/v1/ingest/alerts", timeout=30,
                   headers={"Authorization": f"Bearer {token}"},
                   json={"resource": "fw01", "event": "vpn_down", "severity": "critical"})
    assert r.status_code == 401
