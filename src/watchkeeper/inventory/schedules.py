"""Periodic jobs of the inventory (imported by core.scheduler.discover())."""

from watchkeeper.core.scheduler import register

from .discovery import engine as discovery

register("inventory.recover_discoveries", 600, discovery.recover_discoveries)
