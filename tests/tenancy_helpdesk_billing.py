"""Tenant-isolation factories of the helpdesk's SLA, time and billing tables (see
tests/tenancy_fixtures.py)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model

from tests.tenancy_fixtures import factory
from watchkeeper.core.actions import create_object
from watchkeeper.core.choices import Role
from watchkeeper.core.models import Client
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.billing import contracts
from watchkeeper.helpdesk.billing.choices import ContractKind, LineKind, RunStatus
from watchkeeper.helpdesk.models import (
    BillingLine,
    BillingRun,
    Contract,
    Holiday,
    SlaClock,
    SlaPolicy,
    TimeEntry,
    Timer,
    WorkType,
)
from watchkeeper.helpdesk.sla import actions as sla
from watchkeeper.helpdesk.time import actions as timeentries


def _ticket(client: Client, tag: str):
    return actions.create_ticket(actor=None, client=client, subject=f"{tag} billed ticket",
                                 notify=False)


def _technician(client: Client, tag: str):
    user, _ = get_user_model().objects.get_or_create(
        email=f"tech-{client.pk}@billing.test",
        # Staff names are not tenant data (every technician sees the staff list), so the
        # tag stays out of it.
        defaults={"role": Role.TECHNICIAN, "name": f"Technician {client.pk}"})
    user.assigned_clients.add(client)
    return user


def _work_type() -> WorkType:
    return WorkType.objects.get_or_create(name="Isolation work",
                                          defaults={"default_rate": Decimal("80")})[0]


@factory(Holiday)
def _holiday(client: Client, tag: str) -> Holiday:
    return create_object(actor=None, model=Holiday, client=client,
                         date=datetime.date(2030, 1, 1), name=f"{tag} Holiday")


@factory(SlaPolicy)
def _policy(client: Client, tag: str) -> SlaPolicy:
    return sla.save_policy(actor=None, name=f"{tag} SLA", client=client,
                           targets={"p3": {"first_response": 60, "resolution": 480}})


@factory(SlaClock)
def _clock(client: Client, tag: str) -> SlaClock:
    _policy(client, f"{tag} clock")
    ticket = _ticket(client, f"{tag} clocked")
    sla.recompute_ticket(ticket.pk)
    return SlaClock.objects.filter(ticket=ticket).first()


@factory(TimeEntry)
def _time_entry(client: Client, tag: str) -> TimeEntry:
    return timeentries.log_time(actor=None, technician=_technician(client, tag),
                                ticket=_ticket(client, tag), minutes=30,
                                work_type=_work_type(), note=f"{tag} time note")


@factory(Timer)
def _timer(client: Client, tag: str) -> Timer:
    return timeentries.start_timer(actor=_technician(client, tag),
                                   ticket=_ticket(client, f"{tag} timed"),
                                   work_type=_work_type(), note=f"{tag} timer note")


@factory(Contract)
def _contract(client: Client, tag: str) -> Contract:
    return contracts.create_contract(actor=None, client=client, name=f"{tag} Contract",
                                     kind=ContractKind.PER_DEVICE, unit_price=Decimal("10"),
                                     starts_on=datetime.date(2025, 1, 1),
                                     notes=f"{tag} contract notes")


@factory(BillingLine)
def _line(client: Client, tag: str) -> BillingLine:
    # A superseded run (no uniqueness per period) holding one line of this client.
    run = BillingRun.objects.create(period_start=datetime.date(2025, 1, 1),
                                    period_end=datetime.date(2025, 1, 31),
                                    status=RunStatus.SUPERSEDED)
    return BillingLine.objects.create(run=run, client=client, kind=LineKind.TIME,
                                      description=f"{tag} invoice line", quantity=1,
                                      unit_price=Decimal("1"), amount=Decimal("1"),
                                      evidence={"note": tag})
