"""Tenant-isolation factories of the helpdesk app (see tests/tenancy_fixtures.py)."""

from __future__ import annotations

from django.utils.text import slugify

from tests.tenancy_fixtures import factory
from watchkeeper.core import actions as core_actions
from watchkeeper.core.models import Client
from watchkeeper.helpdesk import actions, attachments
from watchkeeper.helpdesk.choices import EntryKind, Status
from watchkeeper.helpdesk.models import (
    Attachment,
    ClientEmailDomain,
    CsatSurvey,
    OutgoingMail,
    Ticket,
    TicketEntry,
    TicketStatusChange,
)


@factory(ClientEmailDomain)
def _domain(client: Client, tag: str) -> ClientEmailDomain:
    return core_actions.create_object(actor=None, model=ClientEmailDomain, client=client,
                                      domain=f"{slugify(tag)}-{client.pk}.example.test")


@factory(Ticket)
def _ticket(client: Client, tag: str) -> Ticket:
    return actions.create_ticket(actor=None, client=client, subject=f"{tag} Ticket",
                                 description=f"{tag} description",
                                 requester_email=f"{slugify(tag)}@example.test")


@factory(TicketEntry)
def _entry(client: Client, tag: str) -> TicketEntry:
    return actions.add_entry(actor=None, ticket=_ticket(client, f"{tag} Entry"),
                             body=f"{tag} reply text", public=True, notify=False)


@factory(TicketStatusChange)
def _status_change(client: Client, tag: str) -> TicketStatusChange:
    ticket = _ticket(client, f"{tag} Status")
    actions.change_ticket(actor=None, ticket=ticket, status=Status.OPEN, note=f"{tag} note")
    return ticket.status_changes.get(to_status=Status.OPEN)


@factory(Attachment)
def _attachment(client: Client, tag: str) -> Attachment:
    ticket = _ticket(client, f"{tag} Attached")
    data = f"{tag} file contents".encode()
    digest, ctype = attachments.store(data)
    entry = ticket.entries.filter(kind=EntryKind.PUBLIC_REPLY).first()
    return Attachment.objects.create(ticket=ticket, entry=entry, filename=f"{tag}.txt",
                                     content_type=ctype, size=len(data), sha256=digest)


@factory(OutgoingMail)
def _mail(client: Client, tag: str) -> OutgoingMail:
    return _ticket(client, f"{tag} Mailed").mails.get()


@factory(CsatSurvey)
def _survey(client: Client, tag: str) -> CsatSurvey:
    ticket = _ticket(client, f"{tag} Surveyed")
    actions.change_ticket(actor=None, ticket=ticket, status=Status.RESOLVED)
    survey = ticket.csat
    actions.answer_survey(survey=survey, score=4, comment=f"{tag} comment")
    return survey
