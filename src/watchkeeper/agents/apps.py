from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _forget_metric_ids(**kwargs) -> None:
    # A flush or migrate may have emptied MetricName; cached ids would then point nowhere.
    from .checkin.writer import _metric_ids

    _metric_ids.clear()


def _demo_fleet():
    from .simulator import demo_fleet

    return demo_fleet


class AgentsConfig(AppConfig):
    name = "watchkeeper.agents"
    label = "agents"
    verbose_name = "Agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watchkeeper.core import hooks

        from . import selectors

        post_migrate.connect(_forget_metric_ids, dispatch_uid="agents.forget_metric_ids")
        hooks.provide("agents.selectors", selectors)
        hooks.provide("core.demo_fleet", _demo_fleet)
