"""Periodic jobs of the helpdesk (imported by the scheduler's discover())."""

from watchkeeper.core.scheduler import register

from .mailin import tasks as tasks_mail
from .sla import actions as sla
from .sla import tasks as tasks_sla

# Every minute; the scheduler enqueues the sweep only when a warning or breach is due.
register("helpdesk.sla_sweep", 60, tasks_sla.sla_sweep, when=sla.has_due_work)
# Daily: kept raw mail past its retention period (docs/configuration.md).
register("helpdesk.purge_raw_mail", 24 * 3600, tasks_mail.purge_raw_mail)
