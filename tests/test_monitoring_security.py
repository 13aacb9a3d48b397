"""Security review findings on monitoring: stored SNMP secrets never follow a check to a new
target (7), are sealed and masked whatever the endpoint (2), notification templates cannot
exhaust a worker (5), chat/webhook channel URLs are stored encrypted and shown masked (6)."""

from __future__ import annotations

import json

import pytest

from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring import poller
from watchkeeper.monitoring.models import Check

pytestmark = pytest.mark.django_db
API = "/api/v1/monitoring"
SNMP = {"host": "10.0.0.2", "community": "n0t-public", "mode": "interface", "if_index": 3}


@pytest.fixture
def policy_a(client_a):
    return mon_actions.create_policy(actor=None, name="A network", client=client_a)


def _snmp_check(api, policy):
    response = api.post(f"{API}/network-checks/", {
        "policy": policy.pk, "name": "Core switch", "kind": "snmp", "config": SNMP},
        content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


# --- 7: a kept secret does not follow a new target ---------------------------------------

@pytest.mark.parametrize("change", [{"host": "203.0.113.66"}, {"port": 1161}])
def test_masked_secret_is_not_kept_when_the_target_changes(as_user, tech_a, policy_a, change):
    # Given an SNMP check with a stored community
    api = as_user(tech_a)
    body = _snmp_check(api, policy_a)
    # When the check is pointed elsewhere with the community sent back as the mask
    response = api.patch(f"{API}/network-checks/{body['id']}/",
                         {"config": {**body["config"], **change}},
                         content_type="application/json")
    # Then the edit is refused (the community must be entered again) and nothing moved
    assert response.status_code == 400, response.content
    assert "community" in response.content.decode()
    stored = poller.open_secrets("snmp", Check.objects.get(pk=body["id"]).config)
    assert stored["host"] == "10.0.0.2" and stored["community"] == "n0t-public"


def test_new_target_with_the_secret_entered_again_is_accepted(as_user, tech_a, policy_a):
    api = as_user(tech_a)
    body = _snmp_check(api, policy_a)
    response = api.patch(f"{API}/network-checks/{body['id']}/", {"config": {
        **body["config"], "host": "10.0.0.9", "community": "other"}},
        content_type="application/json")
    assert response.status_code == 200, response.content
    stored = poller.open_secrets("snmp", Check.objects.get(pk=body["id"]).config)
    assert stored["host"] == "10.0.0.9" and stored["community"] == "other"


def test_edit_form_does_not_keep_the_secret_for_a_new_host(as_user, tech_a, policy_a):
    # Given an SNMP check edited in the UI
    check = mon_actions.add_check(actor=None, policy=policy_a, name="Core switch",
                                  kind="snmp", config=poller.seal_secrets("snmp", SNMP))
    client = as_user(tech_a)
    config = {**poller.masked("snmp", check.config), "host": "203.0.113.66"}
    # When the host changes and the community is left as the mask
    client.post(f"/monitoring/network/{check.pk}/edit/", {
        "name": check.name, "kind": "snmp", "config": json.dumps(config),
        "interval_seconds": 60, "fail_after": 1, "recover_after": 1, "is_enabled": "on"})
    # Then the stored check still points at the old host with its community
    stored = poller.open_secrets("snmp", Check.objects.get(pk=check.pk).config)
    assert stored["host"] == "10.0.0.2" and stored["community"] == "n0t-public"
