from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "watchkeeper.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers outbox subscriptions)
