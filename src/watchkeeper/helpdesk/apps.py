from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "watchkeeper.helpdesk"
    label = "helpdesk"
    verbose_name = "Helpdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watchkeeper.core import contact_rules, search

        from . import handlers  # noqa: F401  (registers the outbox subscriptions)
        from .contact_checks import mail_domain_check
        from .selectors import search_tickets
        from .sla import handlers as sla_handlers  # noqa: F401  (SLA clocks follow ticket events)

        contact_rules.register(mail_domain_check)
        search.register("tickets", "Tickets", search_tickets)
