from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "watchkeeper.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers event handlers)
