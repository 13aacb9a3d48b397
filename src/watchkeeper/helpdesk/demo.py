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
