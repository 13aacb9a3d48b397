"""Alert notifications: email over SMTP, a client's contacts, webhooks (generic JSON, Slack,
Teams), each rendered from a template, per channel.

Exactly once: an alert event gets one outbox delivery per matching channel (a provider
names them `monitoring.notify:<channel id>`), so the outbox's lease decides which worker
handles it. The handler then claims the `Notification` row (unique per event and channel)
with a compare-and-set on its status and lease before it sends, and marks it sent after:
a redelivered event, or a second worker on the same row, finds it claimed or sent and does
nothing. A failed send marks the row failed and raises, so the outbox retries it later.
Every try is a `NotificationAttempt` row.

Maintenance windows, a parent that is down, and flapping suppress the send (recorded with
its reason); digest channels collect rows that a scheduled task sends as one message.

Catch-up: a channel only hears of events emitted while it exists and matches. When one is
created, enabled or widened, `queue_catch_up` can tell it, once, of the alerts open now
that it would have been told of: one directed `alert.catchup` event per (channel, alert),
whose id is derived from the pair, with its `Notification` row created at once (pending),
then sent by the same handler and claim as any other. A recovery goes only to channels
that were told of the problem (sent or in a digest, catch-up included); a change or an
escalation reaching a channel that wants openings but never had this one is sent,
labelled as the first notice (`event.first_notice`).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from watchkeeper.core import catalogue, crypto, events, safe_templates
from watchkeeper.core import mail as core_mail
from watchkeeper.core.models import Event

from ..choices import (
    STATE_RANK,
    AlertStatus,
    ChannelKind,
    NotificationStatus,
    WebhookFormat,
)
from ..events import AlertCatchup, AlertEvent
from ..models import Alert, Notification, NotificationAttempt, NotificationChannel

log = logging.getLogger(__name__)

HANDLER_PREFIX = "monitoring.notify"
DEFAULT_KINDS = ("alert.opened", "alert.resolved")
CATCH_UP = "alert.catchup"


def subscribable() -> list[str]:
    """The events a channel may ask for: the catalogue's broadcast `alert.*` kinds
    (alert.catchup is directed, never broadcast)."""
    return catalogue.kinds("alert.*", subscribable=True)
# What a catch-up reports: alerts someone may still need to act on (snoozed ones are quiet
# on purpose, suppressed ones were never told to anybody).
CATCH_UP_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
# One request queues at most this many (oldest first); asking again queues the rest.
CATCH_UP_LIMIT = 1000
# A channel counts as told of an alert once one of its notifications was sent or digested.
TOLD = (NotificationStatus.SENT, NotificationStatus.DIGEST)
LEASE = timedelta(minutes=2)
WEBHOOK_TIMEOUT = 10.0

DEFAULT_SUBJECT = ("[{{ alert.severity|upper }}] {{ alert.check }} on "
                   "{{ device.name|default:'(no device)' }} — {{ event.verb }}"
                   "{% if event.first_notice %} (first notice){% endif %}")
DEFAULT_BODY = ("{{ event.verb|capfirst }}: {{ alert.check }} on "
                "{{ device.name|default:'(no device)' }} ({{ client.name }})\n"
                "{% if event.catch_up %}This alert opened before this channel was told "
                "of it; it is sent once now because the channel asked to catch up.\n"
                "{% elif event.first_notice %}First notice to this channel: it was not "
                "told when this alert opened.\n{% endif %}"
                "Severity: {{ alert.severity }}\nSummary: {{ alert.summary }}\n"
                "Seen {{ alert.count }} time(s) since {{ alert.opened_at }}\n"
                "{{ alert.url }}\n")
VERBS = {"alert.opened": "opened", "alert.changed": "changed", "alert.resolved": "resolved",
         "alert.escalated": "escalated (not acknowledged)",
         CATCH_UP: "already open (catch-up)"}

# Rendered in the sandbox of core.safe_templates, with the plain-dict context built below.
SUBJECT_LIMIT = 1_000
BODY_LIMIT = 50_000


URL_PURPOSE = "monitoring.channel-url"
URL_MASK = "••••••"


def seal_url(url: str) -> str:
    return crypto.encrypt(url, URL_PURPOSE) if url else ""


def channel_url(channel: NotificationChannel) -> str:
    """The channel's webhook URL in clear (for sending only; never shown)."""
    return crypto.decrypt(channel.url_enc, URL_PURPOSE) if channel.url_enc else ""


def mask_url(url: str) -> str:
    """Scheme and host only: Slack/Teams/webhook URLs carry their credential in the path."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/{URL_MASK}"


def url_problems(url: str) -> list[str]:
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return ["The URL must be a valid http:// or https:// address."]
    return [] if len(url) <= 2000 else ["The URL is too long."]


def template_problems(source: str) -> list[str]:
    """Why `source` may not be used as a notification template (empty: it may)."""
    return [f"Template error: {p}" for p in safe_templates.check(source)]


def validate_channel(kind: str, fields: dict[str, Any]) -> list[str]:
    errors = []
    if kind not in ChannelKind.values:
        return [f"Unknown channel kind {kind!r}."]
    if kind == ChannelKind.EMAIL and not fields.get("recipients"):
        errors.append("An email channel needs at least one recipient.")
    if kind == ChannelKind.WEBHOOK and not (fields.get("url") or fields.get("url_enc")):
        errors.append("A webhook channel needs a URL.")
    if fields.get("url"):
        errors.extend(url_problems(fields["url"]))
    if kind == ChannelKind.CONTACTS and not fields.get("client"):
        if not fields.get("client_id"):
            errors.append("A contacts channel belongs to a client.")
    for kind_name in fields.get("event_kinds") or []:
        if kind_name not in subscribable():
            errors.append(f"Unknown event {kind_name!r}.")
    for source in (fields.get("subject_template") or "", fields.get("body_template") or ""):
        errors.extend(template_problems(source))
    return errors


# --- Outbox wiring -------------------------------------------------------------------------

def channels_for(kind: str, client_id: int | None) -> list[str]:
    """Provider: one delivery per active channel that wants this alert event."""
    if not kind.startswith("alert.") or kind not in subscribable():
        return []
    rows = NotificationChannel.objects.filter(is_active=True).filter(
        Q(client__isnull=True) | Q(client_id=client_id)).values_list("id", "event_kinds")
    return [f"{HANDLER_PREFIX}:{pk}" for pk, kinds in rows
            if kind in (kinds or DEFAULT_KINDS)]


def handle(declared, handler_name: str) -> None:
    event = catalogue.row_of(declared)
    channel_id = int(handler_name.split(":", 1)[1])
    channel = NotificationChannel.objects.filter(pk=channel_id, is_active=True).first()
    if channel is None:
        if event.kind == CATCH_UP:  # its row was made when queued: close it, with why
            for note in Notification.objects.filter(event=event,
                                                    status=NotificationStatus.PENDING):
                if Notification.objects.filter(pk=note.pk, status=NotificationStatus.PENDING
                                               ).update(status=NotificationStatus.SUPPRESSED):
                    NotificationAttempt.objects.create(
                        notification=note, ok=True, detail="suppressed: channel switched off")
        return  # deleted or switched off since the event
    deliver(event, channel)


events.add_provider(channels_for)
events.add_resolver(HANDLER_PREFIX, handle)


# --- Catch-up ------------------------------------------------------------------------------

def catch_up_matches(*, client_id: int | None, min_severity: str,
                     event_kinds: list[str] | None,
                     channel: NotificationChannel | None = None):
    """The open alerts a channel with these settings would be told of by a catch-up.

    Only a channel that wants `alert.opened` catches up (an escalation-only channel hears of
    escalations as they happen). An alert counts when it is active or acknowledged, neither
    suppressed nor flapping, at least `min_severity`, of the channel's client (no client:
    every client), and the channel has no notification of it yet except suppressed ones
    (told, in a digest, queued or being retried all count as told)."""
    from django.db.models import Exists, OuterRef

    if "alert.opened" not in (event_kinds or DEFAULT_KINDS):
        return Alert.objects.none()
    floor = STATE_RANK.get(min_severity, 0)
    severities = [s for s, rank in STATE_RANK.items() if rank >= floor]
    qs = Alert.objects.filter(status__in=CATCH_UP_STATUSES, suppressed="",
                              is_flapping=False, severity__in=severities)
    if client_id is not None:
        qs = qs.filter(client_id=client_id)
    if channel is not None and channel.pk:
        qs = qs.filter(~Exists(Notification.objects.filter(
            alert=OuterRef("pk"), channel=channel).exclude(
            status=NotificationStatus.SUPPRESSED)))
    return qs


def catch_up_candidates(channel: NotificationChannel):
    """`catch_up_matches` for a saved channel as it is now (none while it is switched off)."""
    if not channel.is_active:
        return Alert.objects.none()
    return catch_up_matches(client_id=channel.client_id, min_severity=channel.min_severity,
                            event_kinds=channel.event_kinds, channel=channel)


def queue_catch_up(channel: NotificationChannel) -> list[int]:
    """In the caller's transaction: one directed `alert.catchup` event per matching open
    alert (oldest first, at most CATCH_UP_LIMIT), each with its pending `Notification`.
    Returns the ids of the alerts queued.

    The pending row makes the alert count as told at once, so a later request skips it.
    Two requests at the same moment both see it untold; the event id, derived from
    (channel, its creation time, alert, how many catch-ups of the pair came before — only
    suppressed ones can have), is then the same for both and the primary key admits one.
    A catch-up that was suppressed (the channel switched off before it went, a maintenance
    window) may be asked for again."""
    from django.db.models import Count

    handler = f"{HANDLER_PREFIX}:{channel.pk}"
    queued = []
    alerts = list(catch_up_candidates(channel).order_by("opened_at", "id")[:CATCH_UP_LIMIT])
    before = dict(Notification.objects.filter(
        channel=channel, event__kind=CATCH_UP, alert__in=[a.pk for a in alerts])
        .values_list("alert_id").annotate(n=Count("id")).values_list("alert_id", "n"))
    for alert in alerts:
        event = events.emit_directed(
            AlertCatchup.of(alert, channel_id=channel.pk), handler=handler,
            client=alert.client_id,
            key=f"{channel.pk}:{channel.created_at.isoformat()}:{alert.pk}:"
                f"{before.get(alert.pk, 0)}")
        if event is None:
            continue  # this pair was queued before (by a concurrent request)
        Notification.objects.create(event=event, channel=channel, alert=alert,
                                    client_id=alert.client_id)
        queued.append(alert.pk)
    return queued


# --- Delivery ------------------------------------------------------------------------------

def _suppression(alert: Alert | None, kind: str, channel: NotificationChannel) -> str:
    from .. import dependencies, maintenance

    if alert is None:
        return "no longer open" if kind == CATCH_UP else ""
    if kind == "alert.resolved":
        # A recovery is told only to the channels that were told of the problem (as
        # Alertmanager's send_resolved does): one that never heard of it gets no noise.
        return "" if _told(alert, channel) else "never notified"
    if kind == CATCH_UP:  # queued a while ago: judged on the alert and channel as they are
        if alert.status not in CATCH_UP_STATUSES:
            return "no longer open"
        if STATE_RANK.get(alert.severity, 0) < STATE_RANK.get(channel.min_severity, 0):
            return "below threshold"
    if alert.suppressed:
        return alert.suppressed
    if alert.is_flapping:
        return "flapping"
    if maintenance.in_maintenance(alert.client_id, alert.device_id, timezone.now()):
        return "maintenance"
    if dependencies.parent_alert(alert.client_id, alert.device_id) is not None:
        return "dependency"
    return ""


def deliver(event: Event, channel: NotificationChannel) -> str:
    """Handle one alert event (its stored row) for one channel; returns what happened."""
    typed: AlertEvent = catalogue.load(event)
    alert = Alert.objects.filter(pk=typed.alert_id).first()
    severity = typed.severity
    if STATE_RANK.get(severity, 0) < STATE_RANK.get(channel.min_severity, 0) and \
            event.kind not in ("alert.resolved", CATCH_UP):
        return "below threshold"
    try:
        with transaction.atomic():
            note, _ = Notification.objects.get_or_create(
                event=event, channel=channel,
                defaults={"alert": alert, "client_id": event.client_id})
    except IntegrityError:
        note = Notification.objects.get(event=event, channel=channel)
    if note.status in (NotificationStatus.SENT, NotificationStatus.SUPPRESSED,
                       NotificationStatus.DIGEST):
        return note.status
    reason = _suppression(alert, event.kind, channel)
    if reason:
        if Notification.objects.filter(pk=note.pk, status=NotificationStatus.PENDING).update(
                status=NotificationStatus.SUPPRESSED):
            NotificationAttempt.objects.create(notification=note, ok=True,
                                               detail=f"suppressed: {reason}")
        return NotificationStatus.SUPPRESSED
    context = _context(event, alert, channel, typed)
    subject, body = render(channel, event, alert, context)
    if channel.digest_minutes:
        Notification.objects.filter(pk=note.pk, status=NotificationStatus.PENDING).update(
            status=NotificationStatus.DIGEST, subject=subject[:300], body=body)
        return NotificationStatus.DIGEST
    now = timezone.now()
    claimed = Notification.objects.filter(
        Q(status__in=[NotificationStatus.PENDING, NotificationStatus.FAILED])
        | Q(status=NotificationStatus.SENDING, locked_until__lt=now),
        pk=note.pk,
    ).update(status=NotificationStatus.SENDING, locked_until=now + LEASE,
             attempts=F("attempts") + 1, subject=subject[:300], body=body)
    if not claimed:
        return "claimed elsewhere"
    try:
        detail = send(channel, subject, body, context)
    except Exception as exc:
        Notification.objects.filter(pk=note.pk).update(
            status=NotificationStatus.FAILED, locked_until=None,
            last_error=f"{type(exc).__name__}: {exc}"[:2000])
        NotificationAttempt.objects.create(notification=note, ok=False,
                                           detail=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    Notification.objects.filter(pk=note.pk).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), locked_until=None,
        last_error="")
    NotificationAttempt.objects.create(notification=note, ok=True, detail=detail[:2000])
    return NotificationStatus.SENT


def _told(alert: Alert, channel: NotificationChannel, *, besides: Event | None = None
          ) -> bool:
    notes = Notification.objects.filter(alert=alert, channel=channel, status__in=TOLD)
    if besides is not None:
        notes = notes.exclude(event=besides)
    return notes.exists()


def _first_notice(event: Event, alert: Alert | None, channel: NotificationChannel | None
                  ) -> bool:
    """A change or escalation for a channel that wants openings but was never told of this
    one (it did not exist, was off, or had a higher minimum then): labelled as such."""
    if alert is None or channel is None or event.kind not in ("alert.changed",
                                                              "alert.escalated"):
        return False
    if "alert.opened" not in (channel.event_kinds or DEFAULT_KINDS):
        return False
    return not _told(alert, channel, besides=event)


def _context(event: Event, alert: Alert | None,
             channel: NotificationChannel | None = None,
             typed: AlertEvent | None = None) -> dict[str, Any]:
    from watchkeeper.core.models import Client
    from watchkeeper.inventory.selectors import all_devices

    typed = typed or catalogue.load(event)
    device = all_devices().filter(pk=typed.device_id).values(
        "id", "name", "hostname", "primary_ip").first() or {}
    client = Client.objects.filter(pk=event.client_id).values("id", "name").first() or {}
    base = settings.BASE_URL.rstrip("/")
    alert_ctx = {
        "id": typed.alert_id, "check": typed.check, "severity": typed.severity,
        "summary": typed.summary,
        "status": alert.status if alert else typed.status,
        "count": alert.count if alert else typed.count,
        "opened_at": alert.opened_at.isoformat() if alert else "",
        "url": f"{base}/monitoring/alerts/{typed.alert_id}/" if base else "",
    }
    return {"alert": alert_ctx, "device": device, "client": client,
            "event": {"kind": event.kind, "verb": VERBS.get(event.kind, event.kind),
                      "at": event.created_at.isoformat(),
                      "catch_up": event.kind == CATCH_UP,
                      "first_notice": _first_notice(event, alert, channel)}}


def render(channel: NotificationChannel, event: Event, alert: Alert | None,
           ctx: dict[str, Any] | None = None) -> tuple[str, str]:
    ctx = ctx if ctx is not None else _context(event, alert, channel)
    subject = safe_templates.render(channel.subject_template or DEFAULT_SUBJECT, ctx,
                                    limit=SUBJECT_LIMIT, fallback=DEFAULT_SUBJECT)
    body = safe_templates.render(channel.body_template or DEFAULT_BODY, ctx,
                                 limit=BODY_LIMIT, fallback=DEFAULT_BODY)
    return " ".join(subject.split()), body


def recipients(channel: NotificationChannel) -> list[str]:
    if channel.kind == ChannelKind.CONTACTS:
        return sorted({c.email for c in channel.contacts.all() if c.email})
    return [r for r in channel.recipients or [] if r]


def send(channel: NotificationChannel, subject: str, body: str,
         context: dict[str, Any]) -> str:
    if channel.kind == ChannelKind.WEBHOOK:
        return send_webhook(channel, subject, body, context)
    return send_email(recipients(channel), subject, body)


def send_email(to: list[str], subject: str, body: str) -> str:
    accepted = core_mail.deliver(core_mail.message(to=to, subject=subject, body=body), to)
    return f"sent to {', '.join(accepted)}"


def webhook_body(fmt: str, subject: str, body: str, context: dict[str, Any]) -> dict:
    if fmt == WebhookFormat.SLACK:
        return {"text": subject, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{subject}*\n{body}"}}]}
    if fmt == WebhookFormat.TEAMS:
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": subject, "title": subject, "text": body.replace("\n", "  \n"),
                "themeColor": {"critical": "D00000", "warning": "F2A900"}.get(
                    context["alert"]["severity"], "2EB886")}
    return {"subject": subject, "body": body, **context}


def send_webhook(channel: NotificationChannel, subject: str, body: str,
                 context: dict[str, Any]) -> str:
    payload = webhook_body(channel.webhook_format, subject, body, context)
    response = httpx.post(channel_url(channel), content=json.dumps(payload, default=str),
                          headers={"Content-Type": "application/json",
                                   "User-Agent": "Watchkeeper-Monitoring"},
                          timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
    if response.status_code >= 300:
        raise RuntimeError(f"HTTP {response.status_code} from "
                           f"{mask_url(channel_url(channel))}")
    return f"HTTP {response.status_code}"


# --- Digest --------------------------------------------------------------------------------

def send_due_digests(now=None) -> dict[str, int]:
    """Each digest channel whose time has come: claim its turn (compare-and-set on
    next_digest_at), then send every waiting row as one message."""
    now = now or timezone.now()
    sent = channels = 0
    for channel in NotificationChannel.objects.filter(digest_minutes__isnull=False,
                                                      next_digest_at__lte=now,
                                                      is_active=True):
        if not NotificationChannel.objects.filter(
                pk=channel.pk, next_digest_at=channel.next_digest_at).update(
                next_digest_at=now + timedelta(minutes=channel.digest_minutes)):
            continue
        channels += 1
        rows = list(Notification.objects.filter(channel=channel,
                                                status=NotificationStatus.DIGEST)
                    .order_by("created_at", "id"))
        if not rows:
            continue
        subject = f"Watchkeeper digest: {len(rows)} alert notification(s)"
        body = "\n\n".join(f"- {r.subject}\n{r.body}" for r in rows)
        context = {"alert": {"severity": ""}, "digest": [r.subject for r in rows]}
        try:
            detail = send(channel, subject, body, context)
        except Exception as exc:
            NotificationAttempt.objects.bulk_create([NotificationAttempt(
                notification=r, ok=False, detail=f"digest: {type(exc).__name__}: {exc}"[:2000])
                for r in rows])
            log.warning("digest of channel %s failed: %s", channel.pk, exc)
            # Try again soon rather than a whole digest period later.
            NotificationChannel.objects.filter(pk=channel.pk).update(
                next_digest_at=now + timedelta(minutes=1))
            continue
        ids = [r.pk for r in rows]
        sent += Notification.objects.filter(pk__in=ids, status=NotificationStatus.DIGEST) \
            .update(status=NotificationStatus.SENT, sent_at=timezone.now())
        NotificationAttempt.objects.bulk_create([NotificationAttempt(
            notification=r, ok=True, detail=f"digest: {detail}"[:2000]) for r in rows])
    return {"channels": channels, "sent": sent}
