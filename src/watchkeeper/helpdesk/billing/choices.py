"""Choices of time entries, contracts and billing runs."""

from django.db import models


class ContractKind(models.TextChoices):
    PER_DEVICE = "per_device", "Managed services, per managed device per month"
    PER_USER = "per_user", "Managed services, per user per month"
    PREPAID = "prepaid", "Prepaid hour block"
    TIME_MATERIALS = "time_materials", "Time and materials"


class RunStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved (locked)"
    SUPERSEDED = "superseded", "Superseded"


class LineKind(models.TextChoices):
    DEVICES = "devices", "Managed devices"
    USERS = "users", "Managed users"
    PREPAID_USED = "prepaid_used", "Prepaid hours used"
    PREPAID_OVERAGE = "prepaid_overage", "Hours beyond the prepaid block"
    TIME = "time", "Time and materials"
