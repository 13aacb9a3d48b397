"""Tables of time tracking: work types, time entries and running timers.

Imported by helpdesk/models.py so Django sees them as models of the helpdesk app.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.timezone import now

MONEY = {"max_digits": 12, "decimal_places": 2}


class WorkType(models.Model):
    """A kind of work (remote support, on-site, project...) with its default hourly rate."""

    name = models.CharField(max_length=100, unique=True)
    default_rate = models.DecimalField(**MONEY, default=Decimal("0"),
                                       validators=[MinValueValidator(Decimal("0"))])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TimeEntry(models.Model):
    """Time a technician spent on a ticket. Once a billing run that counted it is approved,
    `billed_run` is set and the entry can no longer change."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey("helpdesk.Ticket", on_delete=models.CASCADE,
                               related_name="time_entries")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="time_entries")
    work_type = models.ForeignKey(WorkType, on_delete=models.PROTECT, related_name="entries")
    date = models.DateField(help_text="The day the work was done (client's local date).")
    minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    billable = models.BooleanField(default=True)
    # Empty: the contract's rate for the work type, else the work type's default rate.
    rate = models.DecimalField(**MONEY, null=True, blank=True,
                               validators=[MinValueValidator(Decimal("0"))])
    note = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # set when made by a timer
    billed_run = models.ForeignKey("helpdesk.BillingRun", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="locked_entries")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "time entries"
        indexes = [
            models.Index(fields=["ticket", "date"], name="timeentry_ticket_idx"),
            models.Index(fields=["technician", "date"], name="timeentry_tech_idx"),
            models.Index(fields=["date"], name="timeentry_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.minutes} min on ticket {self.ticket_id}"

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.01"))


class Timer(models.Model):
    """A running timer of a technician on a ticket, kept on the server so it survives a
    reload or a second browser; stopping it writes a TimeEntry."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey("helpdesk.Ticket", on_delete=models.CASCADE,
                               related_name="timers")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="timers")
    work_type = models.ForeignKey(WorkType, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+")
    note = models.TextField(blank=True)
    started_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["started_at"]
        constraints = [models.UniqueConstraint(fields=["ticket", "technician"],
                                               name="timer_one_per_ticket_technician")]

    def __str__(self) -> str:
        return f"Timer of {self.technician_id} on ticket {self.ticket_id}"
