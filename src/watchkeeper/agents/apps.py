from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _forget_metric_ids(**kwargs) -> None:
    # A flush or migrate may have emptied MetricName; cached ids would then point nowhere.
    from .writer import _metric_ids

    _metric_ids.clear()


class AgentsConfig(AppConfig):
    name = "watchkeeper.agents"
    label = "agents"
    verbose_name = "Agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_forget_metric_ids, dispatch_uid="agents.forget_metric_ids")
