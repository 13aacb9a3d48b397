from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "watchkeeper.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import catalogue, handlers  # noqa: F401  (registers event handlers)

        catalogue.autodiscover()  # every app's events.py: the event catalogue
