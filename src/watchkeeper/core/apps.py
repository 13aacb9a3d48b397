from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "watchkeeper.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import catalogue, converters, handlers  # noqa: F401  (registers event handlers)

        converters.register()  # <id:pk>, before any URLconf is imported
        catalogue.autodiscover()  # every app's events.py: the event catalogue
