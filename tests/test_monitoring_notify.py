"""End to end: a metric crosses a threshold -> one alert -> one email over SMTP (aiosmtpd
on loopback) -> recovery resolves it; repeats and flapping send nothing more; maintenance
and a parent down suppress the send but keep the record; webhooks; digest; escalation."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.agents.checkin.writer import insert_samples
from watchkeeper.core import events
from watchkeeper.inventory.relations import actions as relation_actions
from watchkeeper.inventory.relations.choices import RelationKind
from watchkeeper.monitoring import actions, evaluate, tasks
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.channels import notify
from watchkeeper.monitoring.choices import (
    AlertStatus,
    ChannelKind,
    NotificationStatus,
    State,
    Suppression,
    WebhookFormat,
)
from watchkeeper.monitoring.models import Alert, Notification, NotificationAttempt

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.SMTP_HOST = "127.0.0.1"
    settings.SMTP_PORT = port
    settings.SMTP_STARTTLS = False
    settings.SMTP_USER = ""
    yield inbox
    controller.stop()


@pytest.fixture
def hook_server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _checkin(device, used_percent, at):
    insert_samples(device.pk, at, {"disk.used_percent:/": used_percent,
                                    "disk.free_bytes:/": 10 * 2**30,
                                    "cpu.percent": 5.0})


def _evaluate(at):
    evaluate.run_evaluation(at)
    events.dispatch_due()


def test_threshold_to_one_email_to_resolution(owner, client_a, smtp):
    # Given a disk policy (critical at 90 %) on every device and an email channel
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="NOC", kind=ChannelKind.EMAIL,
                           recipients=["noc@msp.test"])
    device = make_device(client_a, "srv-01")
    t0 = timezone.now() - timedelta(minutes=10)
    _checkin(device, 50.0, t0)
    _evaluate(t0 + timedelta(seconds=1))
    assert not Alert.objects.exists()
    # When the disk crosses the threshold and stays there for several check-ins
    for i in range(1, 5):
        _checkin(device, 93.0 + i, t0 + timedelta(minutes=i))
        _evaluate(t0 + timedelta(minutes=i, seconds=1))
    # Then one alert and exactly one email
    alert = Alert.objects.get()
    assert alert.severity == State.CRITICAL and alert.count == 4
    assert len(smtp.messages) == 1
    rcpt, content = smtp.messages[0]
    assert rcpt == ["noc@msp.test"]
    assert "Disk space on srv-01" in content and "CRITICAL" in content
    # When the disk recovers
    _checkin(device, 40.0, t0 + timedelta(minutes=6))
    _evaluate(t0 + timedelta(minutes=6, seconds=1))
    # Then the alert is resolved and one recovery email follows
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert len(smtp.messages) == 2 and "resolved" in smtp.messages[1][1]
    # Every attempt is logged
    assert NotificationAttempt.objects.filter(ok=True).count() == 2
    # And redelivering every event sends nothing more
    for note in Notification.objects.all():
        notify.deliver(note.event, note.channel)
    assert len(smtp.messages) == 2


def test_failed_send_is_retried_and_sent_once(owner, client_a, smtp, settings):
    _, check = disk_policy(owner)
    channel = actions.create_channel(actor=owner, name="NOC", kind=ChannelKind.EMAIL,
                                     recipients=["noc@msp.test"])
    device = make_device(client_a, "srv-01")
    good_port = settings.SMTP_PORT
    settings.SMTP_PORT = 1  # nothing listens: the send fails
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL)])
    events.dispatch_due()
    note = Notification.objects.get(channel=channel)
    assert note.status == NotificationStatus.FAILED and note.attempts == 1
    assert NotificationAttempt.objects.filter(ok=False).count() == 1
    # When the SMTP server is back and the outbox retries
    settings.SMTP_PORT = good_port
    from watchkeeper.core.models import EventDelivery

    EventDelivery.objects.update(next_attempt_at=timezone.now())
    events.dispatch_due()
    events.dispatch_due()
    note.refresh_from_db()
    assert note.status == NotificationStatus.SENT and note.attempts == 2
    assert len(smtp.messages) == 1


def test_maintenance_suppresses_the_email_but_keeps_the_alert(owner, client_a, smtp):
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="NOC", kind=ChannelKind.EMAIL,
                           recipients=["noc@msp.test"])
    device = make_device(client_a, "srv-01")
    # Given a weekly window that is running now
    start = timezone.now() - timedelta(minutes=30)
    weekday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][start.weekday()]
    actions.create_maintenance(actor=owner, client=client_a, name="Patch night",
                               starts_at=start - timedelta(weeks=2), duration_minutes=120,
                               rrule=f"FREQ=WEEKLY;BYDAY={weekday}", device=device)
    # When the check fails
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL)])
    events.dispatch_due()
    # Then the alert is recorded, marked, and nobody is mailed; the skip is logged
    alert = Alert.objects.get()
    assert alert.suppressed == Suppression.MAINTENANCE
    assert smtp.messages == []
    assert NotificationAttempt.objects.get().detail == "suppressed: maintenance"


def test_a_one_off_window_that_ended_does_not_suppress(owner, client_a, smtp):
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="NOC", kind=ChannelKind.EMAIL,
                           recipients=["noc@msp.test"])
    device = make_device(client_a, "srv-01")
    actions.create_maintenance(actor=owner, client=client_a, name="Yesterday",
                               starts_at=timezone.now() - timedelta(days=1),
                               duration_minutes=60)
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL)])
    events.dispatch_due()
    assert len(smtp.messages) == 1


def test_router_down_suppresses_the_devices_behind_it(owner, client_a, smtp):
    from watchkeeper.core.models import Site

    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="NOC", kind=ChannelKind.EMAIL,
                           recipients=["noc@msp.test"])
    site = Site.objects.create(client=client_a, name="Main office")
    router = make_device(client_a, "rtr-01", site=site)
    pcs = [make_device(client_a, f"pc-{i}", site=site) for i in range(3)]
    relation_actions.add_relation(actor=owner, kind=RelationKind.UPLINK, parent=router,
                                  site=site)
    # When the router goes critical, then every PC behind it
    record_results([CheckResult(check.pk, router.pk, client_a.pk, State.CRITICAL)])
    record_results([CheckResult(check.pk, pc.pk, client_a.pk, State.CRITICAL) for pc in pcs])
    events.dispatch_due()
    # Then one email (the router's); the PCs' alerts hang under it, recorded
    parent = Alert.objects.get(device=router)
    children = Alert.objects.filter(device__in=pcs)
    assert children.count() == 3
    assert all(a.parent_id == parent.pk and a.suppressed == Suppression.DEPENDENCY
               for a in children)
    assert len(smtp.messages) == 1 and "rtr-01" in smtp.messages[0][1]


def test_webhook_formats(owner, client_a, hook_server):
    url, received = hook_server
    _, check = disk_policy(owner)
    for fmt in WebhookFormat.values:
        actions.create_channel(actor=owner, name=f"hook {fmt}", kind=ChannelKind.WEBHOOK,
                               url=url, webhook_format=fmt)
    device = make_device(client_a, "srv-01")
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL,
                                message="/ 97% used")])
    events.dispatch_due()
    assert len(received) == 3
    by_shape = {("blocks" in b and "slack") or ("@type" in b and "teams") or "generic": b
                for b in received}
    assert by_shape["generic"]["alert"]["summary"] == "/ 97% used"
    assert by_shape["generic"]["device"]["name"] == "srv-01"
    assert "srv-01" in by_shape["slack"]["text"]
    assert by_shape["teams"]["themeColor"] == "D00000"


def test_templates_and_client_contacts(owner, client_a, smtp):
    from watchkeeper.core.models import Contact

    _, check = disk_policy(owner)
    contact = Contact.objects.create(client=client_a, name="Ann", email="ann@acme.test")
    actions.create_channel(actor=owner, name="Acme contacts", kind=ChannelKind.CONTACTS,
                           client=client_a, contacts=[contact],
                           subject_template="{{ client.name }}: {{ alert.check }}",
                           body_template="Hello, {{ device.name }} needs attention.")
    device = make_device(client_a, "srv-01")
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL)])
    events.dispatch_due()
    rcpt, content = smtp.messages[0]
    assert rcpt == ["ann@acme.test"]
    assert "Subject: Acme Dental: Disk space" in content
    assert "Hello, srv-01 needs attention." in content


def test_channel_of_another_client_gets_nothing(owner, client_a, client_b, smtp):
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="B only", kind=ChannelKind.EMAIL,
                           client=client_b, recipients=["b@borealis.test"])
    device = make_device(client_a, "srv-01")
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL)])
    events.dispatch_due()
    assert smtp.messages == []


def test_digest_sends_one_message_for_many_alerts(owner, client_a, smtp):
    _, check = disk_policy(owner)
    channel = actions.create_channel(actor=owner, name="Digest", kind=ChannelKind.EMAIL,
                                     recipients=["noc@msp.test"], digest_minutes=60)
    devices = [make_device(client_a, f"srv-{i}") for i in range(4)]
    record_results([CheckResult(check.pk, d.pk, client_a.pk, State.CRITICAL)
                    for d in devices])
    events.dispatch_due()
    assert smtp.messages == []
    # When the digest time comes (twice: the second run finds nothing new)
    later = timezone.now() + timedelta(minutes=61)
    assert notify.send_due_digests(later)["sent"] == 4
    assert notify.send_due_digests(later)["sent"] == 0
    assert len(smtp.messages) == 1
    assert smtp.messages[0][1].count("- [CRITICAL] Disk space on srv-") == 4
    assert not Notification.objects.filter(channel=channel).exclude(
        status=NotificationStatus.SENT).exists()


def test_unacknowledged_alert_escalates_once(owner, client_a, smtp):
    _, check = disk_policy(owner, escalate_after_minutes=15)
    actions.create_channel(actor=owner, name="Manager", kind=ChannelKind.EMAIL,
                           recipients=["boss@msp.test"], event_kinds=["alert.escalated"])
    device = make_device(client_a, "srv-01")
    other = make_device(client_a, "srv-02")
    record_results([CheckResult(check.pk, d.pk, client_a.pk, State.CRITICAL)
                    for d in (device, other)])
    # One is acknowledged in time
    actions.acknowledge_alerts(actor=owner, alerts=[Alert.objects.get(device=other)])
    events.dispatch_due()
    assert smtp.messages == []
    later = timezone.now() + timedelta(minutes=16)
    assert tasks.sweep_escalations(later) == 1
    assert tasks.sweep_escalations(later) == 0
    events.dispatch_due()
    assert len(smtp.messages) == 1 and smtp.messages[0][0] == ["boss@msp.test"]
    assert "srv-01" in smtp.messages[0][1]


def test_flapping_sends_no_storm(owner, client_a, smtp):
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="NOC", kind=ChannelKind.EMAIL,
                           recipients=["noc@msp.test"])
    device = make_device(client_a, "srv-01")
    start = datetime.now(UTC) - timedelta(minutes=10)
    for i in range(20):
        at = start + timedelta(seconds=20 * i)
        record_results([CheckResult(check.pk, device.pk, client_a.pk,
                                    State.CRITICAL if i % 2 == 0 else State.OK,
                                    observed_at=at)], now=at)
        events.dispatch_due()
    # Opened and resolved only until flapping was detected, then silence
    assert len(smtp.messages) <= 5


def test_recovery_goes_only_to_channels_told_of_the_problem(owner, client_a, smtp):
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="Critical only", kind=ChannelKind.EMAIL,
                           recipients=["crit@msp.test"], min_severity=State.CRITICAL)
    actions.create_channel(actor=owner, name="Everything", kind=ChannelKind.EMAIL,
                           recipients=["all@msp.test"])
    device = make_device(client_a, "srv-01")
    # A warning reaches only the second channel; its recovery too
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.WARNING)])
    events.dispatch_due()
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.OK)])
    events.dispatch_due()
    assert [rcpt for rcpt, _ in smtp.messages] == [["all@msp.test"], ["all@msp.test"]]
