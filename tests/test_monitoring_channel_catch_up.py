"""Channels and alerts that were already open: a channel created, switched on or widened
after an alert opened is told of it once when it asks to catch up (real SMTP on loopback),
never twice (redelivery, a second request), never of another tenant's alerts; a recovery
goes only to channels told of the problem; a change or escalation of an alert a channel
never heard of is sent marked "first notice". API, pages, audit and events."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_string, policy

import pytest
from django.utils import timezone

from tests import test_monitoring_notify as notify_tests
from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core import events
from watchkeeper.core.models import AuditEntry, Event, EventDelivery
from watchkeeper.monitoring import actions, tasks
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.channels import notify
from watchkeeper.monitoring.choices import (
    AlertStatus,
    ChannelKind,
    NotificationStatus,
    State,
)
from watchkeeper.monitoring.models import Alert, Notification, NotificationAttempt

pytestmark = pytest.mark.django_db

# The loopback SMTP server (aiosmtpd) and webhook receiver of the notification tests.
smtp = notify_tests.smtp
hook_server = notify_tests.hook_server


def _open(check, device, severity=State.CRITICAL):
    record_results([CheckResult(check.pk, device.pk, device.client_id, severity,
                                message="/ 97% used")])
    events.dispatch_due()
    return Alert.objects.get(device=device, status=AlertStatus.OPEN)


def _recover(check, device):
    record_results([CheckResult(check.pk, device.pk, device.client_id, State.OK)])
    events.dispatch_due()


def _email(owner, name="NOC", **fields):
    fields.setdefault("recipients", ["noc@msp.test"])
    return actions.create_channel(actor=owner, name=name, kind=ChannelKind.EMAIL, **fields)


def _mail(content: str) -> tuple[str, str]:
    """Subject and body of a received message, decoded (the subject's dash is encoded)."""
    msg = message_from_string(content, policy=policy.default)
    return str(msg["Subject"]), msg.get_content()


def _redeliver_everything():
    EventDelivery.objects.update(status="pending", next_attempt_at=timezone.now(),
                                 locked_until=None)
    events.dispatch_due()


def test_channel_created_after_an_alert_opened_catches_up_once(owner, client_a, smtp):
    # Given an alert that opened while no channel existed
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    alert = _open(check, device)
    assert smtp.messages == []
    # When a channel is created asking to catch up
    channel = _email(owner, catch_up=True)
    assert channel.caught_up == [alert.pk]
    events.dispatch_due()
    # Then exactly one mail, marked as a catch-up, to that channel
    assert len(smtp.messages) == 1
    rcpt, content = smtp.messages[0]
    assert rcpt == ["noc@msp.test"]
    subject, body = _mail(content)
    assert subject == "[CRITICAL] Disk space on srv-01 — already open (catch-up)"
    assert "opened before this channel was told of it" in body
    # And neither a redelivery of every outbox row nor a second request sends it again
    _redeliver_everything()
    for note in Notification.objects.filter(channel=channel):
        notify.deliver(note.event, channel)
    assert actions.catch_up_channel(actor=owner, channel=channel) == []
    events.dispatch_due()
    assert len(smtp.messages) == 1
    # When the alert recovers, the channel (told by the catch-up) hears of it
    _recover(check, device)
    assert len(smtp.messages) == 2
    assert _mail(smtp.messages[1][1])[0] == "[CRITICAL] Disk space on srv-01 — resolved"


def test_without_catch_up_recovery_is_skipped_and_an_escalation_is_labelled(
        owner, client_a, smtp):
    _, check = disk_policy(owner, escalate_after_minutes=15)
    device, other = make_device(client_a, "srv-01"), make_device(client_a, "srv-02")
    _open(check, device)
    _open(check, other)
    # Given a channel created afterwards, without catching up
    channel = _email(owner, event_kinds=["alert.opened", "alert.resolved",
                                         "alert.escalated"])
    assert channel.caught_up == []
    events.dispatch_due()
    assert smtp.messages == []
    # When one alert recovers: the channel never heard of it, so no recovery mail
    _recover(check, device)
    assert smtp.messages == []
    skipped = Notification.objects.get(channel=channel, alert__device=device)
    assert skipped.status == NotificationStatus.SUPPRESSED
    assert skipped.attempt_log.get().detail == "suppressed: never notified"
    # When the other escalates: it is sent, marked as the first notice
    assert tasks.sweep_escalations(timezone.now() + timedelta(minutes=16)) == 1
    events.dispatch_due()
    assert len(smtp.messages) == 1
    subject, body = _mail(smtp.messages[0][1])
    assert subject == ("[CRITICAL] Disk space on srv-02 — escalated (not acknowledged) "
                       "(first notice)")
    assert "First notice to this channel: it was not told when this alert opened." in body


def test_escalation_only_channel_is_not_labelled_first_notice(owner, client_a, smtp):
    _, check = disk_policy(owner, escalate_after_minutes=15)
    _open(check, make_device(client_a, "srv-01"))
    channel = _email(owner, name="Manager", event_kinds=["alert.escalated"])
    assert notify.catch_up_candidates(channel).count() == 0  # it wants no openings
    tasks.sweep_escalations(timezone.now() + timedelta(minutes=16))
    events.dispatch_due()
    assert len(smtp.messages) == 1
    subject, body = _mail(smtp.messages[0][1])
    assert "escalated" in subject and "first notice" not in subject + body.lower()


def test_client_channel_catches_up_only_on_its_own_client(owner, client_a, client_b,
                                                          smtp):
    _, check = disk_policy(owner)
    a_alert = _open(check, make_device(client_a, "a-srv"))
    b_alert = _open(check, make_device(client_b, "b-srv"))
    b_warning = _open(check, make_device(client_b, "b-warn"), State.WARNING)
    snoozed = _open(check, make_device(client_b, "b-snoozed"))
    actions.snooze_alerts(actor=owner, alerts=[snoozed], minutes=60)
    # A channel of client B, critical only, catching up
    channel = _email(owner, name="B critical", client=client_b, recipients=["b@b.test"],
                     min_severity=State.CRITICAL, catch_up=True)
    events.dispatch_due()
    # Then only B's open critical alert: not A's, not the warning, not the snoozed one
    assert channel.caught_up == [b_alert.pk]
    assert len(smtp.messages) == 1
    assert _mail(smtp.messages[0][1])[0] == "[CRITICAL] Disk space on b-srv — already open " \
                                            "(catch-up)"
    assert not Notification.objects.filter(channel=channel, alert=a_alert).exists()
    # And an MSP-wide channel would see A's and B's (the count it would be offered)
    wide = notify.catch_up_matches(client_id=None, min_severity=State.WARNING,
                                   event_kinds=[])
    assert set(wide.values_list("id", flat=True)) == {a_alert.pk, b_alert.pk, b_warning.pk}


def test_widening_catches_up_only_what_was_not_told(owner, client_a, smtp):
    _, check = disk_policy(owner)
    channel = _email(owner, min_severity=State.CRITICAL)
    critical = _open(check, make_device(client_a, "srv-crit"))
    warning = _open(check, make_device(client_a, "srv-warn"), State.WARNING)
    assert len(smtp.messages) == 1  # the critical one, as it opened
    # The edit form's offer for "warning and worse": only the alert it was not told of
    assert notify.catch_up_matches(client_id=None, min_severity=State.WARNING,
                                   event_kinds=[], channel=channel).get() == warning
    # When the minimum is lowered to warning with a catch-up
    channel = actions.update_channel(actor=owner, channel=channel,
                                     min_severity=State.WARNING, catch_up=True)
    events.dispatch_due()
    # Then the warning is sent once; the critical one is not sent again
    assert channel.caught_up == [warning.pk]
    assert len(smtp.messages) == 2
    assert _mail(smtp.messages[1][1])[0] == "[WARNING] Disk space on srv-warn — already " \
                                            "open (catch-up)"
    assert Notification.objects.filter(channel=channel, alert=critical).count() == 1


def test_a_catch_up_whose_channel_was_switched_off_can_be_asked_again(owner, client_a,
                                                                      smtp):
    _, check = disk_policy(owner)
    alert = _open(check, make_device(client_a, "srv-01"))
    channel = _email(owner, catch_up=True)
    # Switched off before the outbox ran: nothing sent, the row says why
    channel = actions.update_channel(actor=owner, channel=channel, is_active=False)
    events.dispatch_due()
    assert smtp.messages == []
    note = Notification.objects.get(channel=channel, alert=alert)
    assert note.status == NotificationStatus.SUPPRESSED
    assert note.attempt_log.get().detail == "suppressed: channel switched off"
    # Switched on again with a catch-up: sent, once
    channel = actions.update_channel(actor=owner, channel=channel, is_active=True,
                                     catch_up=True)
    assert channel.caught_up == [alert.pk]
    events.dispatch_due()
    _redeliver_everything()
    assert len(smtp.messages) == 1


def test_an_alert_resolved_before_the_catch_up_went_is_not_sent(owner, client_a, smtp):
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    alert = _open(check, device)
    channel = _email(owner)
    actions.catch_up_channel(actor=owner, channel=channel)
    actions.resolve_alerts(actor=owner, alerts=[alert])
    events.dispatch_due()
    assert smtp.messages == []
    detail = NotificationAttempt.objects.filter(notification__channel=channel).values_list(
        "detail", flat=True)
    assert "suppressed: no longer open" in set(detail)


def test_catch_up_is_audited_and_announced(owner, client_a):
    _, check = disk_policy(owner)
    alerts = [_open(check, make_device(client_a, f"srv-{i}")) for i in range(3)]
    channel = _email(owner)
    ids = actions.catch_up_channel(actor=owner, channel=channel)
    assert ids == [a.pk for a in sorted(alerts, key=lambda a: (a.opened_at, a.pk))]
    entry = AuditEntry.objects.filter(object_type="monitoring.notificationchannel",
                                      object_id=str(channel.pk)).latest("id")
    assert entry.changes == {"catch_up_alerts": [[], ids]} and entry.actor == owner
    event = Event.objects.get(kind="notificationchannel.caught_up")
    assert event.payload == {"id": channel.pk, "count": 3, "alerts": ids}
    # One directed event per alert, for this channel's handler only (no broadcast)
    directed = Event.objects.filter(kind=notify.CATCH_UP)
    assert directed.count() == 3
    assert set(EventDelivery.objects.filter(event__in=directed).values_list(
        "handler", flat=True)) == {f"monitoring.notify:{channel.pk}"}
    # Nothing to do a second time: no audit row, no event
    assert actions.catch_up_channel(actor=owner, channel=channel) == []
    assert Event.objects.filter(kind="notificationchannel.caught_up").count() == 1


def test_directed_event_is_recorded_once_per_key(client_a):
    from watchkeeper.monitoring.events import AlertCatchup

    catchup = AlertCatchup(alert_id=1, device_id=None, check="Disk", check_id=None,
                           severity="critical", summary="", status="open", count=1,
                           suppressed="", is_flapping=False, wants_ticket=False,
                           resolve_ticket=False, by="monitoring", channel_id=1)
    first = events.emit_directed(catchup, handler="monitoring.notify:1", key="k",
                                 client=client_a)
    again = events.emit_directed(catchup, handler="monitoring.notify:1", key="k",
                                 client=client_a)
    assert first is not None and again is None
    assert EventDelivery.objects.filter(event=first).count() == 1


def test_catch_up_kind_cannot_be_subscribed(owner):
    with pytest.raises(actions.ActionError, match="Unknown event 'alert.catchup'"):
        _email(owner, event_kinds=["alert.catchup"])


# --- API ---------------------------------------------------------------------------------

def test_api_create_with_catch_up_and_the_catch_up_action(as_user, owner, client_a, smtp):
    _, check = disk_policy(owner)
    first = _open(check, make_device(client_a, "srv-01"))
    api = as_user(owner)
    made = api.post("/api/v1/monitoring/channels/", {
        "name": "NOC", "kind": "email", "recipients": ["noc@msp.test"],
        "catch_up": True}, content_type="application/json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["caught_up"] == [first.pk] and body["catch_up_available"] == 0
    assert "catch_up" not in body  # write-only
    events.dispatch_due()
    assert len(smtp.messages) == 1
    # A second alert opens while the channel is off; switched on, it is offered
    pk = body["id"]
    assert api.patch(f"/api/v1/monitoring/channels/{pk}/", {"is_active": False},
                     content_type="application/json").status_code == 200
    second = _open(check, make_device(client_a, "srv-02"))
    assert api.post(f"/api/v1/monitoring/channels/{pk}/catch-up/").status_code == 409
    on = api.patch(f"/api/v1/monitoring/channels/{pk}/", {"is_active": True},
                   content_type="application/json").json()
    assert on["caught_up"] == [] and on["catch_up_available"] == 1
    listed = api.get("/api/v1/monitoring/channels/").json()["results"][0]
    assert listed["catch_up_available"] is None
    done = api.post(f"/api/v1/monitoring/channels/{pk}/catch-up/")
    assert done.status_code == 200 and done.json() == {"queued": 1, "alerts": [second.pk]}
    events.dispatch_due()
    assert len(smtp.messages) == 2


def test_api_update_widening_with_catch_up(as_user, owner, tech_a, client_a):
    _, check = disk_policy(owner)
    warning = _open(check, make_device(client_a, "srv-warn"), State.WARNING)
    channel = _email(owner, client=client_a, min_severity=State.CRITICAL)
    api = as_user(tech_a)
    url = f"/api/v1/monitoring/channels/{channel.pk}/"
    assert api.get(url).json()["catch_up_available"] == 0
    answer = api.patch(url, {"min_severity": "warning", "catch_up": True},
                       content_type="application/json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["caught_up"] == [warning.pk]
    assert Notification.objects.filter(channel=channel, alert=warning).count() == 1
    refused = api.patch(url, {"event_kinds": ["alert.catchup"]},
                        content_type="application/json")
    assert refused.status_code == 409 and "alert.catchup" in refused.json()["detail"]


def test_api_catch_up_of_another_tenants_channel_is_a_404(as_user, owner, tech_a,
                                                           client_b):
    channel = _email(owner, client=client_b, recipients=["b@b.test"])
    wide = _email(owner, name="Everyone")
    api = as_user(tech_a)
    for target in (channel, wide):
        response = api.post(f"/api/v1/monitoring/channels/{target.pk}/catch-up/")
        assert response.status_code == 404
    assert not Event.objects.filter(kind="notificationchannel.caught_up").exists()


# --- Pages --------------------------------------------------------------------------------

def test_form_offers_the_count_and_the_choice_creates_the_catch_up(as_user, tech_a, owner,
                                                                   client_a, client_b):
    _, check = disk_policy(owner)
    mine = _open(check, make_device(client_a, "srv-a"))
    _open(check, make_device(client_b, "srv-b"))
    page = as_user(tech_a)
    # The count follows the form's values (htmx partial)
    url = "/monitoring/channels/catch-up-count/"
    base = {"min_severity": "warning", "event_kinds": ["alert.opened"], "is_active": "on"}
    assert page.get(url, base).url == "/monitoring/channels/new/"  # not a page by itself
    page.defaults["HTTP_HX_REQUEST"] = "true"
    html = page.get(url, {**base, "client": client_a.pk}).content.decode()
    assert "Also notify about the 1 alert open now that matches" in html
    # Another tenant's client, or every client, is not counted for a technician of A
    for client in (client_b.pk, ""):
        html = page.get(url, {**base, "client": client}).content.decode()
        assert "Also notify" not in html and "nothing to catch up on" in html
    html = page.get(url, {**base, "client": client_a.pk,
                          "event_kinds": ["alert.escalated"]}).content.decode()
    assert "Also notify" not in html
    del page.defaults["HTTP_HX_REQUEST"]
    # The form shows it, and ticking it queues the catch-up
    response = page.post("/monitoring/channels/new/", {
        "name": "Acme on-call", "client": client_a.pk, "kind": "email",
        "recipients": "oncall@acme.test", "webhook_format": "generic",
        "event_kinds": ["alert.opened", "alert.resolved"], "min_severity": "warning",
        "is_active": "on", "catch_up": "on"}, follow=True)
    assert response.status_code == 200
    assert "1 open alert queued for it (catch-up)" in response.content.decode()
    channel = response.context["channel"]
    assert list(Notification.objects.filter(channel=channel).values_list(
        "alert_id", flat=True)) == [mine.pk]
    # The channel's page now offers nothing more
    assert "has been sent to it (or queued)" in page.get(
        f"/monitoring/channels/{channel.pk}/").content.decode()


def test_bad_recipients_are_refused_and_nothing_is_created(as_user, owner):
    response = as_user(owner).post("/monitoring/channels/new/", {
        "name": "NOC", "kind": "email", "recipients": "noc@msp.test, not-an-address",
        "webhook_format": "generic", "event_kinds": ["alert.opened"],
        "min_severity": "warning", "is_active": "on"})
    assert response.status_code == 200
    assert "Not an email address: not-an-address" in response.content.decode()
    assert not notify.NotificationChannel.objects.exists()


def test_channel_page_catch_up_button_and_edit(as_user, owner, client_a):
    _, check = disk_policy(owner)
    alert = _open(check, make_device(client_a, "srv-01"))
    channel = _email(owner)
    page = as_user(owner)
    detail = page.get(f"/monitoring/channels/{channel.pk}/").content.decode()
    assert "1 open alert matches this channel" in detail
    response = page.post(f"/monitoring/channels/{channel.pk}/catch-up/", follow=True)
    assert "1 open alert queued" in response.content.decode()
    assert Notification.objects.filter(channel=channel, alert=alert).count() == 1
    edit = page.get(f"/monitoring/channels/{channel.pk}/edit/").content.decode()
    assert "nothing to catch up on" in edit


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------

@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_catch_up_requests_at_once_send_each_alert_once(owner, client_a, hook_server):
    import threading

    from django.db import close_old_connections, connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent requests need PostgreSQL (WATCHKEEPER_DATABASE_URL)")
    url, received = hook_server
    _, check = disk_policy(owner)
    record_results([CheckResult(check.pk, make_device(client_a, f"ws-{i:02}").pk,
                                client_a.pk, State.CRITICAL) for i in range(40)])
    events.dispatch_due()
    channel = actions.create_channel(actor=owner, name="hook", kind=ChannelKind.WEBHOOK,
                                     url=url)
    barrier = threading.Barrier(4)
    queued: list[list[int]] = []
    errors: list[BaseException] = []

    def request():
        try:
            barrier.wait()
            queued.append(actions.catch_up_channel(actor=owner, channel=channel))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            close_old_connections()

    def dispatcher():
        try:
            barrier.wait()
            for _ in range(20):
                events.dispatch_due()
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=f) for f in (request, request, dispatcher, dispatcher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    events.dispatch_due()
    _redeliver_everything()
    # Then the two requests queued 40 between them, and each alert arrived once
    assert sorted(sum(queued, [])) == sorted(Alert.objects.values_list("id", flat=True))
    ids = [body["alert"]["id"] for body in received]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert {body["event"]["kind"] for body in received} == {notify.CATCH_UP}
