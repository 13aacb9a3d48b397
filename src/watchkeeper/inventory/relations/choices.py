"""Choices of device relations."""

from django.db import models


class RelationKind(models.TextChoices):
    """How a device (or a whole site) depends on its parent device."""

    GATEWAY = "gateway", "Gateway of the device"
    UPLINK = "uplink", "Uplink (switch or router upstream)"
    HOST = "host", "Host of the VM"
    DEPENDS = "depends", "Depends on"
    POWER = "power", "Powered by"


# Kinds with one parent per device: two different parents from two sources are a conflict.
SINGLE_PARENT = frozenset({RelationKind.GATEWAY, RelationKind.UPLINK, RelationKind.HOST,
                           RelationKind.POWER})


class RelationSource(models.TextChoices):
    """Where a relation comes from. Manual ones are typed by a person; the others are
    observed and kept up to date by what observed them."""

    MANUAL = "manual", "Manual"
    AGENT = "agent", "Agent"
    DISCOVERY = "discovery", "Discovery"
    IMPORT = "import", "Import"
