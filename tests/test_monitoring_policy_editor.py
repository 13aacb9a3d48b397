"""Issue 11, defect 6: monitoring maintained in the UI, not only through the API — checks
added and edited through per-kind forms (units, validation, no JSON), disabled and deleted;
assignments made with a picker (no database ids typed) and removed; overrides; ticket
settings; a policy deleted; a what-if count shown before saving; and the default policies
of a new install, under which a dead agent raises an alert."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core.models import AuditEntry
from watchkeeper.monitoring import actions, defaults
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, CheckKind, Scope, State
from watchkeeper.monitoring.models import Alert, Check, CheckOverride, Policy
from watchkeeper.monitoring.policies import effective_checks_for

pytestmark = pytest.mark.django_db

GIB = 2**30


def _add(api, policy, preview=None, **fields):
    data = {"verb": "add-check", "check-fail_after": 1, "check-recover_after": 1,
            "check-interval_seconds": 60, "check-is_enabled": "on"}
    if preview:
        data["preview"] = preview
    data.update({f"check-{k}": v for k, v in fields.items()})
    return api.post(f"/monitoring/policies/{policy.pk}/", data)


@pytest.fixture
def acme(owner, client_a):
    policy = actions.create_policy(actor=owner, name="Acme servers", client=client_a)
    return policy


def test_check_added_through_its_kinds_fields_with_units(as_user, tech_a, acme):
    api = as_user(tech_a)
    page = api.get(f"/monitoring/policies/{acme.pk}/").content.decode()
    # The form asks per kind, with units; no JSON field
    assert "Warning at (% used)" in page and "Also warn below (GiB free)" in page
    # The metric picker offers names a person reads
    from watchkeeper.agents.models import MetricName
    from watchkeeper.monitoring.check_forms import metric_label

    MetricName.objects.create(name="disk.used_percent:C:")
    assert metric_label("disk.used_percent:C:") == "Disk used (%) of C:"
    page = api.get(f"/monitoring/policies/{acme.pk}/").content.decode()
    assert '<option value="disk.used_percent:C:">Disk used (%) of C:</option>' in page
    assert "check-config" not in page
    response = _add(api, acme, name="Data disk", kind="disk", **{
        "disk__mount": "/srv", "disk__warning": "80", "disk__critical": "92",
        "disk__free_critical_bytes": "5"})
    assert response.status_code == 302
    check = acme.checks.get()
    assert check.config == {"mount": "/srv", "warning": 80.0, "critical": 92.0,
                            "free_critical_bytes": 5 * GIB}
    # Shown back in words, never as a Python dict
    html = api.get(f"/monitoring/policies/{acme.pk}/").content.decode()
    assert "critical at 92 % used" in html and "{&#x27;" not in html and "{'" not in html


def test_bad_input_is_a_clear_error_and_nothing_is_saved(as_user, tech_a, acme):
    api = as_user(tech_a)
    inverted = _add(api, acme, name="CPU", kind="cpu", **{"cpu__warning": "95",
                                                          "cpu__critical": "80"})
    assert inverted.status_code == 200
    assert "The critical threshold must be beyond the warning one." in inverted.content.decode()
    missing = _add(api, acme, name="Nginx", kind="process")
    assert "Required for this kind of check." in missing.content.decode()
    over = _add(api, acme, name="Mem", kind="memory", **{"memory__warning": "150"})
    assert "less than or equal to 100" in over.content.decode()
    assert not acme.checks.exists()


def test_check_edited_disabled_and_deleted_in_the_ui(as_user, tech_a, client_a, acme, owner):
    check = actions.add_check(actor=owner, policy=acme, name="Nightly job",
                              kind=CheckKind.SCRIPT, config={"script_id": 1,
                                                             "exit_codes": {"3": "warning"}})
    svc = actions.add_check(actor=owner, policy=acme, name="Spooler", kind=CheckKind.SERVICE,
                            config={"service": "Spooler"})
    api = as_user(tech_a)
    page = api.get(f"/monitoring/checks/{svc.pk}/").content.decode()
    assert 'value="Spooler"' in page
    response = api.post(f"/monitoring/checks/{svc.pk}/", {
        "verb": "save", "name": "Print spooler", "fail_after": 2, "recover_after": 1,
        "interval_seconds": 60, "is_enabled": "on", "service__service": "Spooler",
        "service__severity": "warning", "service__missing_ok": "on"})
    assert response.status_code == 302, response.content.decode()[:800]
    svc.refresh_from_db()
    assert (svc.name, svc.fail_after) == ("Print spooler", 2)
    assert svc.config == {"service": "Spooler", "severity": "warning", "missing_ok": True}
    # A key the form does not show (set through the API) is kept on edit
    from watchkeeper.agents.models import Script
    Script.objects.create(pk=1, name="Backup freshness")
    api.post(f"/monitoring/checks/{check.pk}/", {
        "verb": "save", "name": "Nightly job", "fail_after": 1, "recover_after": 1,
        "interval_seconds": 60, "is_enabled": "on", "script__script_id": "1"})
    check.refresh_from_db()
    assert check.config == {"script_id": 1, "exit_codes": {"3": "warning"}}
    # An alert of it, then disable and delete it (its open alert is resolved)
    device = make_device(client_a, "acme-print")
    actions.assign_policy(actor=owner, policy=acme, scope=Scope.DEVICE, target=device)
    for _ in range(2):  # fail_after is 2 now
        record_results([CheckResult(svc.pk, device.pk, client_a.pk, State.CRITICAL)])
    alert = Alert.objects.get(check_template=svc)
    api.post(f"/monitoring/checks/{svc.pk}/", {"verb": "disable"})
    svc.refresh_from_db()
    assert svc.is_enabled is False
    confirm = api.get(f"/monitoring/checks/{svc.pk}/delete/").content.decode()
    assert "1 open alert(s) of it are resolved." in confirm
    assert api.post(f"/monitoring/checks/{svc.pk}/delete/").status_code == 302
    assert not Check.objects.filter(pk=svc.pk).exists()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_assign_with_the_picker_and_remove(as_user, tech_a, client_a, client_b, acme, owner):
    device = make_device(client_a, "acme-web")
    other = make_device(client_b, "beta-web")
    api = as_user(tech_a)
    page = api.get(f"/monitoring/policies/{acme.pk}/").content.decode()
    # Names in the picker, of the policy's client only
    assert f'value="device:{device.pk}"' in page and "Acme Dental › acme-web" in page
    assert f'value="device:{other.pk}"' not in page and 'value="global"' not in page
    # Another tenant's object posted anyway is refused
    forged = api.post(f"/monitoring/policies/{acme.pk}/", {
        "verb": "assign", "assign-target": f"device:{other.pk}"})
    assert forged.status_code == 200 and not acme.assignments.exists()
    response = api.post(f"/monitoring/policies/{acme.pk}/", {
        "verb": "assign", "assign-target": f"device:{device.pk}"})
    assert response.status_code == 302
    assignment = acme.assignments.get()
    html = api.get(f"/monitoring/policies/{acme.pk}/").content.decode()
    assert "Device Acme Dental › acme-web" in html
    api.post(f"/monitoring/policies/{acme.pk}/", {"verb": "unassign",
                                                  "assignment": assignment.pk})
    assert not acme.assignments.exists()


def test_preview_counts_before_saving_and_saves_nothing(as_user, tech_a, client_a, acme):
    make_device(client_a, "acme-1")
    make_device(client_a, "acme-2")
    api = as_user(tech_a)
    version, audits = acme.version, AuditEntry.objects.count()
    page = api.post(f"/monitoring/policies/{acme.pk}/", {
        "verb": "assign", "assign-target": f"client:{client_a.pk}", "preview": "1"})
    html = page.content.decode()
    assert 'id="assign-preview"' in html and "would reach <strong>2</strong> device(s)" in html
    page = _add(api, acme, name="CPU", kind="cpu", preview="1", **{"cpu__warning": "80"})
    assert 'id="check-preview"' in page.content.decode()
    acme.refresh_from_db()
    assert not acme.assignments.exists() and not acme.checks.exists()
    assert acme.version == version and AuditEntry.objects.count() == audits


def test_override_per_level_and_removal(as_user, owner, client_a):
    policy, check = disk_policy(owner)
    device = make_device(client_a, "acme-nas")
    api = as_user(owner)
    response = api.post(f"/monitoring/checks/{check.pk}/", {
        "verb": "override", "override-target": f"device:{device.pk}",
        "override-enabled": "inherit", "override-disk__critical": "98"})
    assert response.status_code == 302, response.content.decode()[:800]
    override = CheckOverride.objects.get(check_template=check)
    assert override.config == {"critical": 98.0}
    assert effective_checks_for([device.pk])[device.pk][0]["config"]["critical"] == 98.0
    html = api.get(f"/monitoring/checks/{check.pk}/").content.decode()
    assert "Device Acme Dental › acme-nas" in html and "critical at 98 % used" in html
    api.post(f"/monitoring/checks/{check.pk}/", {"verb": "remove-override",
                                                 "override": override.pk})
    assert not CheckOverride.objects.exists()


def test_ticket_settings_and_policy_delete(as_user, owner, acme):
    api = as_user(owner)
    response = api.post(f"/monitoring/policies/{acme.pk}/", {
        "verb": "settings", "settings-name": "Acme servers",
        "settings-ticket_severities": ["critical", "warning"],
        "settings-ticket_resolve_on_recovery": "on", "settings-escalate_after_minutes": "30"})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.ticket_severities == ["critical", "warning"]
    assert acme.escalate_after_minutes == 30
    confirm = api.get(f"/monitoring/policies/{acme.pk}/delete/").content.decode()
    assert "0 check(s) and 0 assignment(s) are deleted with it." in confirm
    assert api.post(f"/monitoring/policies/{acme.pk}/delete/").status_code == 302
    assert not Policy.objects.filter(pk=acme.pk).exists()


def test_default_policies_raise_an_alert_for_a_dead_agent(owner, client_a):
    from watchkeeper.agents.choices import AgentStatus, Connectivity
    from watchkeeper.agents.models import Agent
    from watchkeeper.core import events
    from watchkeeper.monitoring.evaluate import evaluate_inventory

    created = defaults.install()
    assert {p.name for p in created} >= {"Default: agent offline", "Default: disk space",
                                          "Default: memory", "Default: CPU",
                                          "Default: stopped services",
                                          "Default: reboot pending",
                                          "Default: certificate expiry"}
    assert defaults.install() == []  # idempotent
    device = make_device(client_a, "acme-pc")
    agent = Agent.objects.create(client=client_a, device=device, hostname="acme-pc",
                                 status=AgentStatus.APPROVED,
                                 connectivity=Connectivity.ONLINE,
                                 next_due_at=timezone.now() - timezone.timedelta(minutes=5),
                                 public_key="x")
    from watchkeeper.agents.actions import mark_offline

    assert mark_offline(agent_id=agent.pk, now=timezone.now())
    events.dispatch_due()
    alert = Alert.objects.get(device=device)
    assert alert.check_name == "Agent offline" and alert.severity == State.CRITICAL
    # The automatic-services default names the stopped ones
    checks = [c for c in effective_checks_for([device.pk])[device.pk]
              if c["kind"] == CheckKind.SERVICE]
    results = evaluate_inventory(device.pk, client_a.pk, checks, {"services": [
        {"name": "sshd", "state": "running", "enabled": True},
        {"name": "cron", "state": "dead", "enabled": True},
        {"name": "gupdate", "state": "stopped", "enabled": True},
        {"name": "cups", "state": "dead", "enabled": False}]}, None, timezone.now())
    assert [(r.state, r.message) for r in results] == [
        (State.WARNING, "automatic service(s) not running: cron")]
