"""Choices of the SLA clocks (helpdesk/sla/actions.py)."""

from django.db import models


class Metric(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    RESOLUTION = "resolution", "Resolution"


class ClockState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused (waiting on client)"
    MET = "met", "Stopped (responded or resolved)"
