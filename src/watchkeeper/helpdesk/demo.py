"""Demo data of the helpdesk (loaded by `watchkeeper demo`, see core/demo.py): a default SLA
policy, work types, and one contract per demo client. Idempotent: each object is looked up
by its natural key first."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from watchkeeper.core.actions import update_object
from watchkeeper.core.demo import ACTOR, DemoContext, loader

from .billing import contracts
from .billing.choices import ContractKind
from .billing.models import Contract
from .sla import actions as sla
from .sla.models import SlaPolicy
from .time import actions as timeentries
from .time.models import WorkType

SLA_TARGETS = {  # business minutes
    "p1": {"first_response": 30, "resolution": 240},
    "p2": {"first_response": 60, "resolution": 480},
    "p3": {"first_response": 240, "resolution": 1440},
    "p4": {"first_response": 480, "resolution": 2400},
}
WORK_TYPES = (("Remote support", "95"), ("On-site", "135"), ("Project work", "120"))
# One contract per demo client, in turn: what each kind looks like in practice.
CONTRACTS = (
    (ContractKind.PER_DEVICE, "Managed endpoints", {"unit_price": Decimal("35")}),
    (ContractKind.PER_USER, "Managed users", {"unit_price": Decimal("28")}),
    (ContractKind.PREPAID, "Prepaid support block",
     {"hours": Decimal("20"), "overage_rate": Decimal("110")}),
    (ContractKind.TIME_MATERIALS, "Time and materials", {}),
)


@loader("helpdesk-billing", order=400)
def billing_data(ctx: DemoContext) -> None:
    if not SlaPolicy.objects.filter(scope="default").exists():
        sla.save_policy(actor=ACTOR, name="Standard SLA", targets=SLA_TARGETS,
                        warning_percent=75)
        ctx.count("SLA policies")
    for name, rate in WORK_TYPES:
        if not WorkType.objects.filter(name=name).exists():
            timeentries.save_work_type(actor=ACTOR, name=name, default_rate=Decimal(rate))
            ctx.count("work types")
    for i, (_slug, client) in enumerate(sorted(ctx.clients.items())):
        if Contract.objects.filter(client=client).exists():
            continue
        kind, name, fields = CONTRACTS[i % len(CONTRACTS)]
        contracts.create_contract(actor=ACTOR, client=client, name=name, kind=kind,
                                  starts_on=date(date.today().year, 1, 1), **fields)
        ctx.count("contracts")
        if kind == ContractKind.PER_USER:
            for contact in client.contacts.filter(is_user=False):
                update_object(actor=ACTOR, obj=contact, is_user=True)


# --- Tickets with their timelines, time entries and a running timer -----------------------

STAFF_DOMAIN = "demo-msp.example"
# client slug, technician (local part, or None: unassigned), subject, description, type,
# impact, urgency, source, [steps]: ("reply"|"note"|"client", text) or ("status", status)
# or ("time", minutes, work type name)
TICKETS = [
    ("harbour-view-dental", "sam.tech", "Imaging PC in surgery 2 will not start the X-ray "
     "software", "Sensor software crashes at launch since this morning's update.",
     "incident", "high", "high", "phone",
     [("reply", "Connecting remotely now; please leave the PC on."),
      ("status", "in_progress"), ("time", 35, "Remote support")]),
    ("harbour-view-dental", "sam.tech", "New starter: dental nurse account and email",
     "Chloe Evans starts Monday; needs a login, email and the booking system.",
     "service_request", "low", "medium", "email",
     [("reply", "Account created; the booking-system licence is on order."),
      ("status", "waiting_third_party"), ("time", 25, "Remote support")]),
    ("st-brigids-primary-school", "sam.tech", "Classroom 4 projector shows no signal",
     "HDMI from the teacher laptop gives no picture since the holidays.",
     "incident", "medium", "medium", "email",
     [("reply", "Could you try the spare cable in the cupboard and tell us?"),
      ("status", "waiting_client")]),
    ("greenleaf-veterinary-clinic", "sam.tech", "Reception printer jams on every label",
     "The Zebra label printer jams after each print.", "incident", "low", "low", "portal",
     [("note", "Likely the media sensor; on-site visit booked."),
      ("time", 50, "On-site"), ("reply", "Sensor cleaned and recalibrated; all good."),
      ("status", "resolved")]),
    ("kessler-ortiz-llp", "casey.tech", "DMS search returns no results for 2023 matters",
     "Full-text search finds nothing older than January.", "problem", "high", "medium",
     "email", [("note", "Index rebuild scheduled for tonight."), ("status", "in_progress"),
               ("time", 90, "Remote support")]),
    ("kessler-ortiz-llp", None, "VPN disconnects every 20 minutes from home",
     "Two associates lose the VPN regularly since Friday.", "incident", "medium", "high",
     "email", []),
    ("summit-accounting-partners", "casey.tech", "Set up MFA for the new tax season staff",
     "Four seasonal staff join on the 1st.", "service_request", "medium", "low", "portal",
     [("reply", "Enrollment links sent to all four."), ("time", 40, "Remote support"),
      ("status", "resolved"), ("status", "closed")]),
    ("northwind-freight-logistics", "riley.tech", "Warehouse scanners cannot reach the WMS",
     "Handhelds in Joliet show 'server unreachable'.", "incident", "high", "high", "phone",
     [("reply", "Joliet access point restarted; scanners reconnecting."),
      ("time", 45, "Remote support"), ("status", "in_progress")]),
    ("northwind-freight-logistics", None, "Order 3 replacement docking stations",
     "For the dispatch desks in Chicago.", "service_request", "low", "low", "email",
     [("note", "Waiting for the budget sign-off before ordering."), ("status", "open")]),
    ("riverside-community-health", "riley.tech", "Mobile unit laptop offline since Tuesday",
     "The laptop of the mobile unit has not synced since Tuesday.", "incident", "medium",
     "medium", "phone", [("note", "Agent shows offline; asked the nurse to power it on."),
                         ("status", "waiting_client")]),
    ("alpine-architekten-ag", "riley.tech", "Render node: upgrade to 128 GB RAM",
     "Nightly renders run out of memory on large models.", "change", "medium", "low",
     "email", [("reply", "Quote sent for 4x32 GB; waiting for approval."),
               ("time", 30, "Project work"), ("status", "waiting_client")]),
    ("harbour-view-dental", None, "Wi-Fi slow in the waiting room",
     "Patients complain the guest Wi-Fi is very slow.", "incident", "low", "medium",
     "portal", []),
]


def _staff(ctx: DemoContext, local: str | None):
    return ctx.users.get(f"{local}@{STAFF_DOMAIN}") if local else None


@loader("helpdesk-tickets", order=410)
def ticket_data(ctx: DemoContext) -> None:
    from watchkeeper.helpdesk import actions as helpdesk
    from watchkeeper.helpdesk.models import Ticket

    work_types = {w.name: w for w in WorkType.objects.all()}
    timer_started = False
    for slug, tech, subject, description, kind, impact, urgency, source, steps in TICKETS:
        client = ctx.clients.get(slug)
        if client is None or Ticket.objects.filter(client=client, subject=subject).exists():
            continue
        technician = _staff(ctx, tech)
        contact = client.contacts.order_by("-is_primary", "id").first()
        actor = technician or ACTOR
        ticket = helpdesk.create_ticket(
            actor=ACTOR, subject=subject, client=client, contact=contact,
            description=description, type=kind, impact=impact, urgency=urgency,
            source=source, assignee=technician, notify=False)
        for step in steps:
            if step[0] == "status":
                ticket = helpdesk.change_ticket(actor=actor, ticket=ticket, status=step[1])
            elif step[0] == "time" and technician is not None:
                timeentries.log_time(actor=technician, ticket=ticket, minutes=step[1],
                                     work_type=work_types[step[2]],
                                     note="Demo: work on the ticket")
            elif step[0] in ("reply", "note"):
                helpdesk.add_entry(actor=actor, ticket=ticket, body=step[1],
                                   public=step[0] == "reply", notify=False)
        if technician is not None and not timer_started and ticket.status == "in_progress":
            timeentries.start_timer(actor=technician, ticket=ticket,
                                    work_type=work_types["Remote support"])
            timer_started = True
        ctx.count("tickets")


def billing_run(server: str = "") -> bool:
    """This month's draft billing run, once the fleet's devices exist (per-device
    contracts count them), computed by the demo's first admin."""
    from django.utils import timezone

    from watchkeeper.core.choices import Role
    from watchkeeper.core.models import User

    from .billing import actions as billing
    from .billing.models import BillingRun

    start, _ = billing.month_bounds(timezone.localdate())
    admin = User.objects.filter(role__in=[Role.ADMIN, Role.OWNER], is_active=True).order_by(
        "id").first()
    if admin is None or BillingRun.objects.filter(period_start=start).exists():
        return False
    billing.create_run(actor=admin, period=start)
    return True
