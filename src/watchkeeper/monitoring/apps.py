from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "watchkeeper.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watchkeeper.core import hooks

        from . import (
            defaults,
            handlers,  # noqa: F401  (registers outbox subscriptions)
        )
        from .history.predictive import assess_drive

        hooks.provide("core.first_start", defaults.install)
        hooks.provide("inventory.drive_assessment", assess_drive)
