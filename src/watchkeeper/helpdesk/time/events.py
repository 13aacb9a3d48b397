"""The events of time tracking: time entries, timers, work types (see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare, declare_crud


@declare("time_entry.created")
class TimeEntryCreated(EventData):
    """A technician logged time on a ticket."""

    id: int
    ticket_id: int
    minutes: int
    billable: bool
    technician_id: int


# Created above with its own fields; changed and deleted through core.actions.
declare_crud("helpdesk.TimeEntry", module=__name__, prefix="time_entry",
             verbs=("changed", "deleted"))
declare_crud("helpdesk.Timer", module=__name__)
declare_crud("helpdesk.WorkType", module=__name__)
