from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "watchkeeper.helpdesk"
    label = "helpdesk"
    verbose_name = "Helpdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watchkeeper.core import contact_rules, search

        from . import (
            handlers,  # noqa: F401  (registers the outbox subscriptions)
            handlers_sla,  # noqa: F401  (SLA clocks follow ticket events)
        )
        from .contact_checks import mail_domain_check
        from .selectors import search_tickets

        contact_rules.register(mail_domain_check)
        search.register("tickets", "Tickets", search_tickets)
