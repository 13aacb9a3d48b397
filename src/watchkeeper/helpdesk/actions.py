"""Writes of the helpdesk. Each action is one transaction with its audit row and event
(ticket.created / ticket.changed); views, API, mail-in and handlers call these only."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.actions import create_object, delete_object, update_object  # noqa: F401
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.models import Client, Contact

from . import events as ev
from . import routing, templating
from .choices import (
    DEFAULT_MATRIX,
    TRANSITIONS,
    EntryKind,
    Level,
    NotificationKind,
    Priority,
    Source,
    Status,
    TicketType,
)
from .models import (
    CsatSurvey,
    CustomFieldDefinition,
    NotificationTemplate,
    PriorityMatrix,
    Queue,
    RoutingRule,
    Ticket,
    TicketEntry,
    TicketStatusChange,
)

TRIAGE_QUEUE_NAME = "Triage"


def _label(actor) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.display_name
    return str(actor or "system")


def _user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --- Priority matrix --------------------------------------------------------------------

def current_matrix() -> tuple[int, dict]:
    row = PriorityMatrix.objects.order_by("-version").first()
    return (row.version, row.matrix) if row else (1, DEFAULT_MATRIX)


def priority_for(impact: str, urgency: str, matrix: dict | None = None) -> str:
    matrix = matrix if matrix is not None else current_matrix()[1]
    return matrix.get(impact, {}).get(urgency, Priority.P3)


def save_priority_matrix(*, actor, matrix: dict) -> PriorityMatrix:
    levels = set(Level.values)
    if set(matrix) != levels or any(set(row) != levels for row in matrix.values()):
        raise ValidationError({"matrix": f"Give a priority for every impact and urgency "
                                         f"({', '.join(sorted(levels))})."})
    if any(p not in Priority.values for row in matrix.values() for p in row.values()):
        raise ValidationError({"matrix": "Unknown priority in the matrix."})
    with transaction.atomic():
        version = current_matrix()[0] + 1
        return create_object(actor=actor, model=PriorityMatrix, version=version,
                             matrix=matrix, created_by=_user(actor))


# --- Queues -----------------------------------------------------------------------------

def triage_queue() -> Queue:
    """The queue of tickets from unknown senders (created on first use)."""
    queue = Queue.objects.filter(is_triage=True).first()
    if queue is not None:
        return queue
    try:
        with transaction.atomic():
            return create_object(actor=None, model=Queue, name=TRIAGE_QUEUE_NAME,
                                 is_triage=True,
                                 description="Mail from senders matched to no client.")
    except (IntegrityError, ValidationError):
        return Queue.objects.get(is_triage=True)


def _can_work_on(user, client_id: int | None) -> bool:
    """A technician may only be given tickets of clients they are assigned to."""
    from watchkeeper.core.tenancy import visible_client_ids

    ids = visible_client_ids(user)
    return ids is None or (client_id is not None and client_id in ids)


# --- Tickets ----------------------------------------------------------------------------

def _alert_choice(*, actor, ticket: Ticket, old_status: str, alert_action: str | None,
                  snooze_minutes: int | None) -> dict[str, Any]:
    """Resolving (or closing) an alert's ticket while its alert is still active asks the
    person what happens to the alert: keep it, snooze it, or resolve it too. Returns the
    event fields of the answer; a ValidationError asks the question."""
    if alert_action is not None and alert_action not in ev.ALERT_ACTIONS:
        raise ValidationError({"alert_action": f"Choose one of {', '.join(ev.ALERT_ACTIONS)}."})
    done = (Status.RESOLVED, Status.CLOSED)
    if ticket.status not in done or old_status in done or _user(actor) is None:
        return {}
    alert_id = ev.alert_id_of(ticket)
    if alert_id is None:
        return {}
    from watchkeeper.monitoring import selectors as monitoring

    if not monitoring.alert_is_active(alert_id):
        return {}
    if alert_action is None:
        raise ValidationError({"alert_action": "The alert of this ticket is still active: "
                               "choose whether to keep it, snooze it or resolve it too."})
    if alert_action == "snooze":
        snooze_minutes = snooze_minutes or 60
        if not 1 <= snooze_minutes <= 7 * 24 * 60:
            raise ValidationError({"snooze_minutes": "Snooze for 1 minute to 7 days."})
        return {"alert_action": alert_action, "snooze_minutes": snooze_minutes}
    return {"alert_action": alert_action}


def _by(actor) -> int | None:
    """The user behind a change, for the event (None: the system, mail-in, an agent)."""
    user = _user(actor)
    return user.pk if user is not None else None


def _status_row(ticket: Ticket, old: str, new: str, actor, at) -> None:
    TicketStatusChange.objects.create(ticket=ticket, from_status=old, to_status=new, at=at,
                                      actor=_user(actor))


def create_ticket(*, actor, subject: str, client: Client | None = None,
                  contact: Contact | None = None, requester_email: str = "",
                  requester_name: str = "", description: str = "",
                  type: str = TicketType.INCIDENT, impact: str = Level.MEDIUM,
                  urgency: str = Level.MEDIUM, priority: str | None = None,
                  source: str = Source.API, queue: Queue | None = None, assignee=None,
                  tags: Iterable[str] = (), custom_fields: dict | None = None,
                  devices: Iterable = (), parent: Ticket | None = None,
                  origin_key: str | None = None, route: bool = True, notify: bool = True,
                  first_entry: dict | None = None) -> Ticket:
    """Open a ticket: priority from the matrix (unless given), routing rules applied,
    status history started, timeline opened, ticket.created emitted, client notified."""
    if contact is not None and client is None:
        client = contact.client
    if contact is not None and contact.client_id != getattr(client, "pk", None):
        raise ValidationError({"contact": "The contact belongs to another client."})
    if parent is not None and parent.client_id != getattr(client, "pk", None):
        raise ValidationError({"parent": "The parent ticket belongs to another client."})
    devices = list(devices)
    if any(d.client_id != getattr(client, "pk", None) for d in devices):
        raise ValidationError({"devices": "A device belongs to another client."})
    if custom_fields:
        custom_fields = validate_custom_fields(custom_fields)
    if assignee is not None and not _can_work_on(assignee, getattr(client, "pk", None)):
        # No name in the message: an id must not reveal who it belongs to.
        raise ValidationError({"assignee": "This person is not assigned to the ticket's "
                                           "client."})
    with transaction.atomic():
        version, matrix = current_matrix()
        now = timezone.now()
        ticket = Ticket(
            client=client, contact=contact, subject=subject.strip()[:300] or "(no subject)",
            requester_email=(requester_email or (contact.email if contact else "")).lower(),
            requester_name=requester_name or (contact.name if contact else ""),
            description=description, type=type, impact=impact, urgency=urgency,
            priority=priority or priority_for(impact, urgency, matrix),
            priority_overridden=bool(priority), matrix_version=version, source=source,
            queue=queue, assignee=assignee, tags=sorted(set(tags)),
            custom_fields=custom_fields or {}, parent=parent, origin_key=origin_key,
            created_by=_user(actor), created_at=now, updated_at=now,
        )
        if client is None and queue is None:
            ticket.queue = triage_queue()
        matched: list[int] = []
        if route:
            outcome = routing.evaluate(RoutingRule.objects.filter(is_active=True),
                                       routing.facts(ticket))
            matched = outcome.matched
            if outcome.queue_id and not (client is None and ticket.queue):
                ticket.queue_id = outcome.queue_id
            if outcome.assignee_id and assignee is None:
                from watchkeeper.core.models import User

                candidate = User.objects.filter(pk=outcome.assignee_id, is_active=True).first()
                if candidate is not None and _can_work_on(candidate, ticket.client_id):
                    ticket.assignee = candidate
            if outcome.priority and not priority:
                ticket.priority, ticket.priority_overridden = outcome.priority, True
            ticket.tags = sorted(set(ticket.tags) | set(outcome.tags))
        ticket.full_clean(exclude=["origin_key"] if origin_key else None)
        ticket.save()
        if devices:
            ticket.devices.set(devices)
        _status_row(ticket, "", Status.NEW, actor, now)
        entry = None
        if first_entry is not None:
            entry = TicketEntry.objects.create(ticket=ticket, created_at=now,
                                               author=_user(actor), **first_entry)
        elif description:
            entry = TicketEntry.objects.create(
                ticket=ticket, kind=EntryKind.PUBLIC_REPLY, is_public=True, body=description,
                author=_user(actor), author_label=ticket.requester_name or _label(actor),
                created_at=now)
        if matched:
            TicketEntry.objects.create(ticket=ticket, kind=EntryKind.SYSTEM, created_at=now,
                                       author_label="routing",
                                       body=f"Routing rules applied: {matched}",
                                       changes={"rules": matched})
        after = audit.snapshot(ticket)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=ticket,
                     changes={k: [None, v] for k, v in after.items()
                              if v not in (None, "", [], {})})
        events.emit(ev.TicketCreated.of(ticket), client=ticket.client_id)
        if notify and ticket.requester_email and source != Source.ALERT:
            from . import notify as notify_mod

            notify_mod.queue_notification(ticket, NotificationKind.CREATED,
                                          in_reply_to=getattr(entry, "message_id", "") or "")
    return ticket


TICKET_FIELDS = {"subject", "type", "impact", "urgency", "priority", "status", "queue",
                 "assignee", "tags", "custom_fields", "client", "contact", "parent",
                 "description"}


def change_ticket(*, actor, ticket: Ticket, note: str = "", alert_action: str | None = None,
                  snooze_minutes: int | None = None, **fields: Any) -> Ticket:
    """Change fields of a ticket: status through the workflow, priority from the matrix when
    impact or urgency change (unless priority is given), one timeline row with the diff.
    Resolving an alert's ticket while the alert is active needs `alert_action` (keep,
    snooze for `snooze_minutes`, resolve): see _alert_choice."""
    unknown = set(fields) - TICKET_FIELDS
    if unknown:
        raise ValidationError(f"Unknown ticket fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        before = audit.snapshot(ticket)
        old_status = ticket.status
        now = timezone.now()
        if "status" in fields and fields["status"] != old_status:
            new = fields["status"]
            if new not in TRANSITIONS.get(old_status, ()):
                raise ValidationError({"status": f"A ticket cannot go from "
                                                 f"{Status(old_status).label} to "
                                                 f"{Status(new).label}."})
        if "tags" in fields:
            fields["tags"] = sorted({str(t).strip() for t in fields["tags"] if str(t).strip()})
        if "custom_fields" in fields:
            fields["custom_fields"] = validate_custom_fields(
                {**ticket.custom_fields, **(fields["custom_fields"] or {})})
        if "client" in fields and fields["client"] != ticket.client:
            if ticket.client_id is not None:
                raise ValidationError({"client": "Only a triage ticket can be given a client."})
            if fields.get("contact") is None and ticket.requester_email and fields["client"]:
                # The requester may be a contact of the client they were matched to by hand.
                fields["contact"] = fields["client"].contacts.filter(
                    email__iexact=ticket.requester_email).order_by("id").first()
        for name, value in fields.items():
            setattr(ticket, name, value)
        if ticket.contact_id and ticket.contact.client_id != ticket.client_id:
            raise ValidationError({"contact": "The contact belongs to another client."})
        if "assignee" in fields and ticket.assignee_id and \
                not _can_work_on(ticket.assignee, ticket.client_id):
            raise ValidationError({"assignee": "This person is not assigned to the "
                                               "ticket's client."})
        if ticket.parent_id and (ticket.parent_id == ticket.pk
                                 or ticket.parent.client_id != ticket.client_id):
            raise ValidationError({"parent": "Not a valid parent for this ticket."})
        if "priority" in fields:
            ticket.priority_overridden = True
        elif {"impact", "urgency"} & set(fields) and not ticket.priority_overridden:
            version, matrix = current_matrix()
            ticket.priority = priority_for(ticket.impact, ticket.urgency, matrix)
            ticket.matrix_version = version
        if ticket.client_id and ticket.queue_id and ticket.queue.is_triage:
            ticket.queue = None  # a ticket given a client leaves triage
        if ticket.status != old_status:
            if ticket.status == Status.RESOLVED:
                ticket.resolved_at = now
            elif ticket.status == Status.CLOSED:
                ticket.closed_at = now
                ticket.resolved_at = ticket.resolved_at or now
            elif old_status in (Status.RESOLVED, Status.CLOSED):
                ticket.resolved_at = ticket.closed_at = None
        ticket.full_clean(exclude=["origin_key"])
        choice = _alert_choice(actor=actor, ticket=ticket, old_status=old_status,
                               alert_action=alert_action, snooze_minutes=snooze_minutes)
        changes = audit.diff(before, audit.snapshot(ticket))
        changes.pop("updated_at", None)
        if not changes and not note:
            return ticket
        ticket.updated_at = now
        ticket.save()
        if ticket.status != old_status:
            _status_row(ticket, old_status, ticket.status, actor, now)
        visible = {k: v for k, v in changes.items() if k not in ("matrix_version",)}
        if visible or note:
            kind = EntryKind.STATUS if set(visible) <= {"status", "resolved_at",
                                                         "closed_at"} and visible \
                else EntryKind.FIELDS
            TicketEntry.objects.create(ticket=ticket, kind=kind, author=_user(actor),
                                       author_label=_label(actor), body=note,
                                       changes=visible, created_at=now)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=ticket,
                     changes={**changes, **({"alert_action": [None, choice["alert_action"]]}
                                            if choice else {})})
        events.emit(ev.TicketChanged.of(ticket, changed=sorted(changes), by_id=_by(actor),
                                        **choice), client=ticket.client_id)
        if ticket.status == Status.RESOLVED and old_status != Status.RESOLVED:
            from . import notify as notify_mod

            token = create_survey(ticket)
            if ticket.requester_email:
                notify_mod.queue_notification(ticket, NotificationKind.RESOLVED,
                                              survey_token=token)
    return ticket


def add_entry(*, actor, ticket: Ticket, body: str, public: bool,
              set_status: str | None = None, author_label: str = "",
              kind: str | None = None, dedupe_key: str | None = None,
              notify: bool = True, alert_action: str | None = None,
              snooze_minutes: int | None = None, **mail: Any) -> TicketEntry:
    """A public reply or an internal note (or a mail received, with its headers). A staff
    member's first public reply stamps first_responded_at; a client's reply to a ticket
    waiting on them reopens it."""
    body = (body or "").strip()
    if not body and not mail.get("message_id"):
        raise ValidationError({"body": "Write something."})
    from watchkeeper.core.choices import Role

    user = _user(actor)
    if kind is None:
        kind = EntryKind.PUBLIC_REPLY if public else EntryKind.INTERNAL_NOTE
    # Mail in and client users speak for the client; signed-in staff for the MSP; anything
    # else (monitoring, automation) is neither and changes no status by itself.
    from_client = kind == EntryKind.EMAIL_IN or (user is not None
                                                 and user.role == Role.CLIENT_USER)
    staff = user is not None and user.role != Role.CLIENT_USER
    if from_client and not public:
        raise ValidationError({"public": "A client's message is always public."})
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        now = timezone.now()
        entry = TicketEntry.objects.create(
            ticket=ticket, kind=kind, is_public=public, author=user,
            author_label=author_label or _label(actor), body=body, created_at=now,
            dedupe_key=dedupe_key, **mail)
        changed = []
        if public and staff and ticket.first_responded_at is None:
            ticket.first_responded_at = now
            changed.append("first_responded_at")
        old_status = ticket.status
        target = set_status
        if target is None and from_client and \
                ticket.status in (Status.WAITING_CLIENT, Status.RESOLVED, Status.CLOSED):
            target = Status.OPEN
        if target is None and staff and public and ticket.status == Status.NEW:
            target = Status.OPEN
        if target and target != old_status:
            if target not in TRANSITIONS.get(old_status, ()):
                raise ValidationError({"status": f"A ticket cannot go from "
                                                 f"{Status(old_status).label} to "
                                                 f"{Status(target).label}."})
            ticket.status = target
            if target == Status.RESOLVED:
                ticket.resolved_at = now
            elif old_status in (Status.RESOLVED, Status.CLOSED):
                ticket.resolved_at = ticket.closed_at = None
            _status_row(ticket, old_status, target, actor, now)
            changed.append("status")
        choice = _alert_choice(actor=actor, ticket=ticket, old_status=old_status,
                               alert_action=alert_action, snooze_minutes=snooze_minutes)
        ticket.updated_at = now
        ticket.save()
        audit.record(actor=actor, action=AuditAction.CREATE, obj=entry,
                     object_repr=f"{ticket.reference} {entry.get_kind_display()}",
                     client_id=ticket.client_id,
                     changes={"kind": [None, kind], "public": [None, public],
                              **({"status": [old_status, ticket.status]}
                                 if "status" in changed else {})})
        events.emit(ev.TicketChanged.of(ticket, changed=["entries", *changed],
                                        by_id=_by(actor), entry_id=entry.pk,
                                        entry_kind=kind, **choice), client=ticket.client_id)
        if notify and public and staff and ticket.requester_email \
                and kind == EntryKind.PUBLIC_REPLY:
            from . import notify as notify_mod

            notify_mod.queue_notification(ticket, NotificationKind.REPLIED, entry=entry)
        if target == Status.RESOLVED and old_status != Status.RESOLVED:
            token = create_survey(ticket)
            if notify and ticket.requester_email:
                from . import notify as notify_mod

                notify_mod.queue_notification(ticket, NotificationKind.RESOLVED,
                                              survey_token=token)
    return entry


def merge_tickets(*, actor, source: Ticket, target: Ticket) -> Ticket:
    """Move `source`'s timeline, attachments, watchers and devices into `target`; close
    `source` pointing at it. Mail threaded to the source now lands in the target."""
    if source.pk == target.pk:
        raise ValidationError("A ticket cannot be merged into itself.")
    if source.client_id != target.client_id and source.client_id is not None:
        raise ValidationError("Tickets of different clients cannot be merged.")
    if target.merged_into_id:
        raise ValidationError("The target ticket was itself merged; merge into its target.")
    with transaction.atomic():
        source = Ticket.objects.select_for_update().get(pk=source.pk)
        target = Ticket.objects.select_for_update().get(pk=target.pk)
        now = timezone.now()
        moved = source.entries.update(ticket=target)
        source.attachments.update(ticket=target)
        Ticket.objects.filter(merged_into=source).update(merged_into=target)
        target.watchers.add(*source.watchers.all())
        target.devices.add(*source.devices.all())
        if source.requester_email and source.requester_email != target.requester_email:
            target.tags = sorted(set(target.tags) | {f"cc:{source.requester_email}"})
        old_status = source.status
        source.merged_into = target
        source.status = Status.CLOSED
        source.closed_at = now
        source.updated_at = now
        source.save()
        if old_status != Status.CLOSED:
            _status_row(source, old_status, Status.CLOSED, actor, now)
        TicketEntry.objects.create(ticket=source, kind=EntryKind.SYSTEM, author=_user(actor),
                                   author_label=_label(actor), created_at=now,
                                   body=f"Merged into {target.reference}.",
                                   changes={"merged_into": [None, target.pk]})
        TicketEntry.objects.create(ticket=target, kind=EntryKind.SYSTEM, author=_user(actor),
                                   author_label=_label(actor), created_at=now,
                                   body=f"{source.reference} merged into this ticket "
                                        f"({moved} timeline entries moved).",
                                   changes={"merged": [None, source.pk]})
        target.updated_at = now
        target.save()
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=source,
                     changes={"merged_into": [None, target.pk],
                              "status": [old_status, Status.CLOSED]})
        events.emit(ev.TicketChanged.of(source, changed=["merged_into", "status"],
                                        by_id=_by(actor)), client=source.client_id)
        events.emit(ev.TicketChanged.of(target, changed=["entries"], by_id=_by(actor),
                                        merged_id=source.pk), client=target.client_id)
    return target


def bulk_change(*, actor, tickets: Iterable[Ticket], **fields: Any) -> list[dict[str, Any]]:
    """Apply the same change to many tickets, each in its own transaction; a result per
    ticket (ok, or the reason it was refused)."""
    results = []
    for ticket in tickets:
        try:
            change_ticket(actor=actor, ticket=ticket, **fields)
        except ValidationError as exc:
            results.append({"id": ticket.pk, "reference": ticket.reference, "ok": False,
                            "error": "; ".join(exc.messages)})
        else:
            results.append({"id": ticket.pk, "reference": ticket.reference, "ok": True,
                            "error": ""})
    return results


def set_watchers(*, actor, ticket: Ticket, add: Iterable = (), remove: Iterable = ()) -> None:
    add, remove = list(add), list(remove)
    with transaction.atomic():
        ticket.watchers.add(*add)
        ticket.watchers.remove(*remove)
        changes = {"watchers": [[u.pk for u in remove], [u.pk for u in add]]}
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=ticket, changes=changes)
        events.emit(ev.TicketChanged.of(ticket, changed=["watchers"], by_id=_by(actor)),
                    client=ticket.client_id)


def set_devices(*, actor, ticket: Ticket, devices: Iterable) -> None:
    devices = list(devices)
    if any(d.client_id != ticket.client_id for d in devices):
        raise ValidationError({"devices": "A device belongs to another client."})
    with transaction.atomic():
        before = sorted(ticket.devices.values_list("pk", flat=True))
        ticket.devices.set(devices)
        after = sorted(d.pk for d in devices)
        if before == after:
            return
        TicketEntry.objects.create(ticket=ticket, kind=EntryKind.FIELDS, author=_user(actor),
                                   author_label=_label(actor),
                                   changes={"devices": [before, after]})
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=ticket,
                     changes={"devices": [before, after]})
        events.emit(ev.TicketChanged.of(ticket, changed=["devices"], by_id=_by(actor)),
                    client=ticket.client_id)


def attach_file(*, actor, ticket: Ticket, filename: str, data: bytes, declared_type: str = "",
                entry: TicketEntry | None = None):
    """Store a file (size limit, sniffed type) and attach it to the ticket."""
    from . import attachments
    from .models import Attachment

    digest, sniffed = attachments.store(data)
    with transaction.atomic():
        attachment = Attachment.objects.create(
            ticket=ticket, entry=entry, filename=attachments.safe_filename(filename),
            declared_type=declared_type[:200], content_type=sniffed, size=len(data),
            sha256=digest)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=attachment,
                     changes={"filename": [None, attachment.filename],
                              "content_type": [None, sniffed], "size": [None, len(data)]})
        events.emit(ev.TicketChanged.of(ticket, changed=["attachments"], by_id=_by(actor),
                                        attachment_id=attachment.pk),
                    client=ticket.client_id)
    return attachment


# --- CSAT -------------------------------------------------------------------------------

def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_survey(ticket: Ticket) -> str | None:
    """A survey for a resolved ticket (one per ticket); the token, or None if one exists."""
    if CsatSurvey.objects.filter(ticket=ticket).exists():
        return None
    token = secrets.token_urlsafe(24)
    CsatSurvey.objects.create(ticket=ticket, client_id=ticket.client_id,
                              technician_id=ticket.assignee_id, token_hash=_hash_token(token))
    return token


def survey_by_token(token: str) -> CsatSurvey | None:
    return CsatSurvey.objects.select_related("ticket").filter(
        token_hash=_hash_token(token or "")).first()


def answer_survey(*, survey: CsatSurvey, score: int, comment: str = "") -> CsatSurvey:
    if survey.answered_at is not None:
        raise ValidationError("This survey was already answered. Thank you!")
    if not 1 <= int(score) <= 5:
        raise ValidationError({"score": "Choose a score from 1 to 5."})
    with transaction.atomic():
        survey.score, survey.comment = int(score), comment[:5000]
        survey.answered_at = timezone.now()
        survey.save()
        audit.record(actor="csat survey", action=AuditAction.UPDATE, obj=survey,
                     object_repr=f"CSAT {survey.ticket.reference}",
                     changes={"score": [None, survey.score]})
        events.emit(ev.TicketCsat.of(survey), client=survey.client_id)
    return survey


# --- Routing rules ----------------------------------------------------------------------

RULE_FIELDS = {"name", "position", "is_active", "match_all", "conditions", "set_queue",
               "set_assignee", "set_priority", "add_tags", "stop"}


def create_rule(*, actor, **fields: Any) -> RoutingRule:
    fields["conditions"] = routing.validate_conditions(fields.get("conditions"))
    with transaction.atomic():
        rule = create_object(actor=actor, model=RoutingRule, **fields)
        _refresh_field_references()
    return rule


def update_rule(*, actor, rule: RoutingRule, **fields: Any) -> RoutingRule:
    if "conditions" in fields:
        fields["conditions"] = routing.validate_conditions(fields["conditions"])
    with transaction.atomic():
        changed = any(getattr(rule, k) != v for k, v in fields.items())
        if changed:
            fields["version"] = rule.version + 1
            fields["updated_at"] = timezone.now()
        rule = update_object(actor=actor, obj=rule, **fields)
        _refresh_field_references()
    return rule


def delete_rule(*, actor, rule: RoutingRule) -> None:
    with transaction.atomic():
        delete_object(actor=actor, obj=rule)
        _refresh_field_references()


# --- Notification templates and custom fields -------------------------------------------

def save_template(*, actor, kind: str, subject: str, body: str) -> NotificationTemplate:
    """A new current version of a notification template, validated first."""
    if kind not in NotificationKind.values:
        raise ValidationError({"kind": "Unknown notification kind."})
    keys = frozenset(CustomFieldDefinition.objects.filter(is_current=True)
                     .values_list("key", flat=True))
    variables = templating.validate(subject, body, custom_keys=keys)
    with transaction.atomic():
        last = NotificationTemplate.objects.filter(kind=kind).order_by("-version").first()
        NotificationTemplate.objects.filter(kind=kind, is_current=True).update(is_current=False)
        tpl = create_object(actor=actor, model=NotificationTemplate, kind=kind,
                            version=(last.version + 1) if last else 1, subject=subject,
                            body=body, variables=variables, is_current=True)
        _refresh_field_references()
    return tpl


def define_custom_field(*, actor, key: str, label: str, field_type: str = "text",
                        choices: list | None = None,
                        required: bool = False) -> CustomFieldDefinition:
    """A new current version of a custom field definition (older versions are kept)."""
    with transaction.atomic():
        last = CustomFieldDefinition.objects.filter(key=key).order_by("-version").first()
        CustomFieldDefinition.objects.filter(key=key, is_current=True).update(is_current=False)
        definition = create_object(
            actor=actor, model=CustomFieldDefinition, key=key, label=label,
            field_type=field_type, choices=choices or [], required=required,
            version=(last.version + 1) if last else 1, is_current=True,
            references=last.references if last else [])
        _refresh_field_references()
    definition.refresh_from_db()
    return definition


def validate_custom_fields(values: dict) -> dict:
    defs = {d.key: d for d in CustomFieldDefinition.objects.filter(is_current=True)}
    clean = {}
    for key, value in (values or {}).items():
        definition = defs.get(key)
        if definition is None:
            raise ValidationError({"custom_fields": f"Unknown custom field {key!r}."})
        if definition.field_type == "number" and value not in (None, ""):
            try:
                value = float(value)
            except (TypeError, ValueError) as exc:
                raise ValidationError({"custom_fields": f"{key}: a number."}) from exc
        elif definition.field_type == "boolean":
            value = value in (True, "true", "1", "on", "yes")
        elif definition.field_type == "choice" and value not in ("", None) and \
                value not in definition.choices:
            raise ValidationError({"custom_fields": f"{key}: one of {definition.choices}."})
        clean[key] = value
    return clean


def _refresh_field_references() -> None:
    """Record on each current custom field definition which templates and rules use it."""
    defs = list(CustomFieldDefinition.objects.filter(is_current=True))
    if not defs:
        return
    rules = list(RoutingRule.objects.all())
    templates = list(NotificationTemplate.objects.filter(is_current=True))
    for definition in defs:
        refs = [f"rule:{r.pk}:{r.name}" for r in rules
                if any(c.get("field") == f"cf.{definition.key}" for c in r.conditions)]
        needle = f"custom.{definition.key}"
        refs += [f"template:{t.kind}:v{t.version}" for t in templates
                 if needle in t.body or needle in t.subject]
        if refs != definition.references:
            CustomFieldDefinition.objects.filter(pk=definition.pk).update(references=refs)


def msp_name() -> str:
    return getattr(settings, "MSP_NAME", "") or "Watchkeeper"
