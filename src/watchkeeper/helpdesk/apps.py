from django.apps import AppConfig


def _demo_billing_run(server: str) -> None:
    from .demo import billing_run

    billing_run()


def _portal_work(user) -> dict:
    from .portal.views import portal_work

    return portal_work(user)


class HelpdeskConfig(AppConfig):
    name = "watchkeeper.helpdesk"
    label = "helpdesk"
    verbose_name = "Helpdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watchkeeper.core import contact_rules, hooks, search

        from . import (
            handlers,  # noqa: F401  (registers the outbox subscriptions)
            selectors,
        )
        from .contact_checks import mail_domain_check
        from .selectors import search_tickets
        from .sla import handlers as sla_handlers  # noqa: F401  (SLA clocks follow ticket events)

        contact_rules.register(mail_domain_check)
        hooks.provide("helpdesk.selectors", selectors)
        hooks.provide("core.portal_work", _portal_work)
        hooks.provide("demo.after_fleet_start", _demo_billing_run)
        search.register("tickets", "Tickets", search_tickets)
