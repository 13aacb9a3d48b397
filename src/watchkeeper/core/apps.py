from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "watchkeeper.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import converters, handlers  # noqa: F401  (handlers registers event handlers)

        converters.register()
