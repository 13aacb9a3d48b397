"""Tables of contracts and billing: contracts per client, billing runs and their invoice lines
with evidence (time entries are in helpdesk/time/models.py).

Imported by helpdesk/models.py so Django sees them as models of the helpdesk app.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from watchkeeper.core.models import Client

from ..time.models import MONEY
from .choices import ContractKind, LineKind, RunStatus


class Contract(models.Model):
    """What a client pays for. Managed-services contracts count devices or users from the
    inventory and contacts (never typed in); prepaid blocks burn down with billable time;
    time-and-materials contracts bill time at their rates per work type."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contracts")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ContractKind.choices)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    # Managed services: price per counted device or user per month; device kinds counted
    # (empty: every kind).
    unit_price = models.DecimalField(**MONEY, default=Decimal("0"),
                                     validators=[MinValueValidator(Decimal("0"))])
    device_kinds = models.JSONField(default=list, blank=True)
    # Prepaid hours: the block, and the hourly rate of time beyond it.
    hours = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"),
                                validators=[MinValueValidator(Decimal("0"))])
    overage_rate = models.DecimalField(**MONEY, default=Decimal("0"),
                                       validators=[MinValueValidator(Decimal("0"))])
    # Time and materials: {"<work type id>": "120.00"}; missing: the work type's default.
    rates = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["client__name", "name"]
        indexes = [models.Index(fields=["client", "kind"], name="contract_client_kind_idx")]
        constraints = [models.CheckConstraint(
            condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
            name="contract_ends_after_start")]

    def __str__(self) -> str:
        return self.name


class BillingRun(models.Model):
    """The invoice lines of every client for one period (a calendar month). A draft can be
    recomputed; approving locks it (and the time entries it counted). A later run of the
    same period supersedes it when approved; approved lines never change."""

    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=12, choices=RunStatus.choices,
                              default=RunStatus.DRAFT)
    total = models.DecimalField(**MONEY, default=Decimal("0"))
    supersedes = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="superseded_by")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)
    computed_at = models.DateTimeField(default=now)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        indexes = [models.Index(fields=["period_start", "status"], name="billingrun_period_idx")]
        constraints = [
            models.UniqueConstraint(fields=["period_start"], condition=Q(status="approved"),
                                    name="billingrun_one_approved_per_period"),
            models.UniqueConstraint(fields=["period_start"], condition=Q(status="draft"),
                                    name="billingrun_one_draft_per_period"),
        ]

    def __str__(self) -> str:
        return f"Billing {self.period_start:%Y-%m} #{self.pk}"

    @property
    def is_locked(self) -> bool:
        return self.status != RunStatus.DRAFT


class BillingLine(models.Model):
    """One invoice line of a client in a run, with its evidence: the devices counted, the
    contacts counted, or the time entries billed (ids and what they showed then)."""

    tenant_path = "client"

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="lines")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="billing_lines")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="billing_lines")
    kind = models.CharField(max_length=20, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=12, decimal_places=2)
    unit_price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    evidence = models.JSONField(default=dict)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "client__name", "position", "id"]
        indexes = [models.Index(fields=["run", "client"], name="billingline_run_client_idx")]

    def __str__(self) -> str:
        return self.description
