from django.apps import AppConfig


def _ping_demo_heartbeats(server: str) -> None:
    from .demo import ping_heartbeats

    ping_heartbeats(server)


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
            selectors,
        )
        from .history.predictive import assess_drive

        hooks.provide("core.first_start", defaults.install)
        hooks.provide("monitoring.selectors", selectors)
        hooks.provide("demo.after_fleet_start", _ping_demo_heartbeats)
        hooks.provide("demo.fleet_round", _ping_demo_heartbeats)
        hooks.provide("inventory.drive_assessment", assess_drive)
