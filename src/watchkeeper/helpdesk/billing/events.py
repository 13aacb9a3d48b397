"""The events of billing: contracts and monthly billing runs (see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare, declare_crud, shape


@shape
class BillingRunEvent(EventData):
    """What every billing-run event tells of the run (one builder: `of`)."""

    id: int
    period: str  # YYYY-MM
    status: str
    total: str  # decimal, as a string

    @classmethod
    def of(cls, run):
        return cls(id=run.pk, period=f"{run.period_start:%Y-%m}", status=run.status,
                   total=str(run.total))


@declare("billing_run.created")
class BillingRunCreated(BillingRunEvent):
    """A billing run (draft) was computed for a month."""


@declare("billing_run.changed")
class BillingRunChanged(BillingRunEvent):
    """A draft billing run was recomputed."""


@declare("billing_run.approved")
class BillingRunApproved(BillingRunEvent):
    """A billing run was approved; its time entries are locked."""


@declare("billing_run.deleted")
class BillingRunDeleted(EventData):
    """A draft billing run was deleted."""

    id: int


declare_crud("helpdesk.Contract", module=__name__)
