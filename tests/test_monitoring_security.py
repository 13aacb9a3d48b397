"""Security review findings on monitoring: stored SNMP secrets never follow a check to a new
target (7), are sealed and masked whatever the endpoint (2), notification templates cannot
exhaust a worker (5), chat/webhook channel URLs are stored encrypted and shown masked (6)."""

from __future__ import annotations

import json

import pytest

from watchkeeper.core.models import AuditEntry
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.models import Check, PolicyVersion
from watchkeeper.monitoring.poller import engine as poller

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


# --- 2: SNMP secrets through the general checks endpoint ---------------------------------

def test_general_checks_endpoint_seals_and_masks_snmp_secrets(as_user, tech_a, policy_a):
    # Given a technician creating an SNMP check through /monitoring/checks/
    api = as_user(tech_a)
    response = api.post(f"{API}/checks/", {
        "policy": policy_a.pk, "name": "Core switch", "kind": "snmp", "config": SNMP},
        content_type="application/json")
    assert response.status_code == 201, response.content
    check_id = response.json()["id"]
    # Then the answer, a later read, the stored row, the policy versions and the audit rows
    # never carry the community
    assert response.json()["config"]["community"] == "••••••"
    read = api.get(f"{API}/checks/{check_id}/").json()
    assert read["config"]["community"] == "••••••" and read["config"]["host"] == "10.0.0.2"
    stored = Check.objects.get(pk=check_id).config
    assert "n0t-public" not in json.dumps(stored)
    assert poller.open_secrets("snmp", stored)["community"] == "n0t-public"
    versions = api.get(f"{API}/policies/{policy_a.pk}/versions/").json()
    assert versions and "n0t-public" not in json.dumps(versions)
    snapshot = PolicyVersion.objects.filter(policy=policy_a).order_by("-version").first()
    assert snapshot.snapshot["checks"][0]["config"]["community"] == "••••••"
    # When the check is edited with the mask sent back, the secret is kept
    response = api.patch(f"{API}/checks/{check_id}/", {"config": {**read["config"],
                                                                  "if_index": 4}},
                         content_type="application/json")
    assert response.status_code == 200, response.content
    config = poller.open_secrets("snmp", Check.objects.get(pk=check_id).config)
    assert config["community"] == "n0t-public" and config["if_index"] == 4
    rows = AuditEntry.objects.filter(object_type__icontains="check")
    assert rows.exists()
    dumped = json.dumps([r.changes for r in rows])
    assert "n0t-public" not in dumped and '"enc"' not in dumped


def test_action_seals_secrets_for_every_caller(policy_a):
    # Given code calling the action directly with a plain community
    check = mon_actions.add_check(actor=None, policy=policy_a, name="Core switch",
                                  kind="snmp", config=dict(SNMP))
    # Then it is stored sealed, and an invalid server-side config is refused
    assert "n0t-public" not in json.dumps(Check.objects.get(pk=check.pk).config)
    with pytest.raises(mon_actions.ActionError):
        mon_actions.add_check(actor=None, policy=policy_a, name="Broken", kind="snmp",
                              config={"host": "10.0.0.2", "mode": "interface"})


# --- 5: notification templates cannot exhaust a worker -----------------------------------

@pytest.mark.parametrize("body", [
    '{{ alert.check|center:"2000000000" }}',
    "{% lorem 100000 p %}",
    '{{ alert.summary|truncatechars:"999999999" }}',
    '{{ alert.summary|floatformat:"100000" }}',
    '{{ alert.summary|join:"' + "x" * 500 + '" }}',
    "{% for a in alert.summary %}{% for b in alert.summary %}x{% endfor %}{% endfor %}",
])
def test_channel_template_outside_the_allowlist_is_refused(owner, body):
    with pytest.raises(mon_actions.ActionError):
        mon_actions.create_channel(actor=owner, name="Ops", kind="email",
                                   recipients=["ops@msp.test"], body_template=body)


def test_channel_template_with_allowed_filters_is_accepted_and_renders(owner):
    from watchkeeper.monitoring.channels import notify

    channel = mon_actions.create_channel(
        actor=owner, name="Ops", kind="email", recipients=["ops@msp.test"],
        subject_template="{{ alert.severity|upper }} {{ alert.check|truncatechars:20 }}",
        body_template="{{ alert.summary|default:'none'|capfirst }}")
    subject, body = notify.render(channel, _event("disk almost full"), None)
    assert subject == "CRITICAL Disk space" and body == "Disk almost full"


def _event(summary: str):
    from django.utils import timezone

    from watchkeeper.core.models import Event
    from watchkeeper.monitoring.events import AlertOpened

    opened = AlertOpened(alert_id=1, device_id=None, check="Disk space", check_id=None,
                         severity="critical", summary=summary, status="open", count=1,
                         suppressed="", is_flapping=False, wants_ticket=False,
                         resolve_ticket=False, by="monitoring")
    return Event(kind=opened.KIND, version=opened.VERSION, created_at=timezone.now(),
                 client_id=None, payload=opened.payload())


def test_rendered_length_is_capped(owner):
    # Given an allowed template whose single loop repeats a long text per character
    from watchkeeper.monitoring.channels import notify

    channel = mon_actions.create_channel(
        actor=owner, name="Ops", kind="email", recipients=["ops@msp.test"],
        body_template="{% for c in alert.summary %}" + "y" * 200 + "{% endfor %}")
    # When it is rendered for an alert with a long summary
    _subject, body = notify.render(channel, _event("z" * 5000), None)
    # Then the body stops at the cap (1,000,000 characters uncapped)
    assert 0 < len(body) <= notify.BODY_LIMIT


def test_stored_unsafe_template_falls_back_to_the_default(owner):
    # Given a channel row saved before templates were checked
    from watchkeeper.monitoring.channels import notify
    from watchkeeper.monitoring.models import NotificationChannel

    channel = NotificationChannel.objects.create(
        name="Old", kind="email", recipients=["ops@msp.test"],
        body_template='{{ alert.check|center:"3000000" }}')
    # When it is rendered, the unsafe template is not used
    _subject, body = notify.render(channel, _event("disk almost full"), None)
    assert len(body) < 10_000 and "Disk space" in body


def test_helpdesk_templates_refuse_unsafe_filters():
    from django.core.exceptions import ValidationError

    from watchkeeper.helpdesk import templating

    with pytest.raises(ValidationError):
        templating.validate('{{ ticket.subject|center:"2000000000" }}')
    assert templating.validate("{{ ticket.subject|upper }}") == ["ticket"]
    # A template saved before the check is not rendered (the fallback is)
    rendered = templating.render('{{ ticket.subject|center:"3000000" }}',
                                 {"ticket": {"subject": "Printer"}},
                                 fallback="{{ ticket.subject }}")
    assert rendered == "Printer"


# --- 6: chat/webhook channel URLs are credentials -----------------------------------------

SLACK = "https://hooks.slack.test/services/T000/B000/s3cr3tT0ken"


def test_channel_url_is_stored_encrypted_and_shown_masked(as_user, owner, tech_a, client_a):
    # Given an owner creating a Slack channel of client A through the API
    api = as_user(owner)
    response = api.post(f"{API}/channels/", {"name": "Ops Slack", "kind": "webhook",
                                             "client": client_a.pk, "url": SLACK,
                                             "webhook_format": "slack"},
                        content_type="application/json")
    assert response.status_code == 201, response.content
    channel_id = response.json()["id"]
    # Then the answer, a read by a technician and the audit rows never show the token
    assert "s3cr3tT0ken" not in json.dumps(response.json())
    read = as_user(tech_a).get(f"{API}/channels/{channel_id}/").json()
    assert "s3cr3tT0ken" not in json.dumps(read) and "hooks.slack.test" in read["url"]
    from watchkeeper.monitoring.models import NotificationChannel

    row = NotificationChannel.objects.filter(pk=channel_id).values().get()
    assert "s3cr3tT0ken" not in json.dumps(row, default=str)
    # When an edit sends the masked URL back, the stored URL is kept
    api = as_user(owner)
    response = api.patch(f"{API}/channels/{channel_id}/", {"url": read["url"],
                                                           "name": "Ops chat"},
                         content_type="application/json")
    assert response.status_code == 200, response.content
    from watchkeeper.monitoring.channels import notify

    assert notify.channel_url(NotificationChannel.objects.get(pk=channel_id)) == SLACK
    # And a new URL replaces it
    api.patch(f"{API}/channels/{channel_id}/", {"url": SLACK + "2"},
              content_type="application/json")
    assert notify.channel_url(NotificationChannel.objects.get(pk=channel_id)) == SLACK + "2"
    rows = AuditEntry.objects.filter(object_type="monitoring.notificationchannel")
    assert rows.count() >= 3
    assert "s3cr3tT0ken" not in json.dumps([r.changes for r in rows])


def test_channel_url_must_be_http(owner):
    with pytest.raises(mon_actions.ActionError):
        mon_actions.create_channel(actor=owner, name="Bad", kind="webhook",
                                   url="file:///etc/passwd")


def test_override_cannot_carry_an_snmp_secret(policy_a):
    # Given an SNMP check (overrides are not applied to server-side checks)
    check = mon_actions.add_check(actor=None, policy=policy_a, name="Core switch",
                                  kind="snmp", config=dict(SNMP))
    # When an override tries to set a community, it is refused (it would be stored in clear)
    with pytest.raises(mon_actions.ActionError):
        mon_actions.set_override(actor=None, check=check, scope="global",
                                 config={"community": "in-clear"})


def test_migration_seals_existing_secrets_and_masks_old_snapshots(policy_a):
    # Given rows written before the fix: a plain community in a check and in a version
    import importlib

    from django.apps import apps

    check = Check.objects.create(policy=policy_a, name="Old", kind="snmp", config=dict(SNMP))
    PolicyVersion.objects.create(policy=policy_a, version=99, snapshot={
        "checks": [{"id": check.pk, "kind": "snmp", "config": dict(SNMP)}]})
    migration = importlib.import_module(
        "watchkeeper.monitoring.migrations.0005_seal_existing_secrets")
    # When the data migration runs
    migration.seal_and_mask(apps, None)
    # Then neither row holds the community in clear, and the check still runs with it
    assert "n0t-public" not in json.dumps(Check.objects.get(pk=check.pk).config)
    assert poller.open_secrets("snmp", Check.objects.get(pk=check.pk).config)[
        "community"] == "n0t-public"
    old = PolicyVersion.objects.get(policy=policy_a, version=99).snapshot
    assert "n0t-public" not in json.dumps(old)
