from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from ..permissions import PUBLIC
from . import users, views


class Router(DefaultRouter):
    """Path converters instead of regexes: a detail route's id is `<id:pk>` (1..2**63-1,
    core/converters.py) unless the viewset names another converter (`lookup_value_converter
    = "uuid"`), so an id that can never exist is the route's 404, not the database's 500."""

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        if getattr(viewset, "lookup_value_converter", None) is None:
            viewset.lookup_value_converter = "id"
        return super().get_lookup_regex(viewset, lookup_prefix)


router = Router(trailing_slash=True, use_regex_path=False)
router.include_root_view = False
router.include_format_suffixes = False  # JSON only: no /clients.json duplicates of routes

router.register("clients", views.ClientViewSet, basename="client")
router.register("sites", views.SiteViewSet, basename="site")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("audit", views.AuditViewSet, basename="audit")
router.register("events", views.EventViewSet, basename="event")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")
router.register("webhooks", views.WebhookViewSet, basename="webhook")
router.register("users", users.UserViewSet, basename="user")
router.register("tokens", users.TokenViewSet, basename="token")

from watchkeeper.inventory.api import register as register_inventory  # noqa: E402

register_inventory(router)

from watchkeeper.agents.api import register as register_agents  # noqa: E402

register_agents(router)

from watchkeeper.helpdesk import api as helpdesk_api  # noqa: E402

helpdesk_api.register(router)

from watchkeeper.helpdesk.billing.api import register as register_billing  # noqa: E402
from watchkeeper.helpdesk.sla.api import register as register_sla  # noqa: E402
from watchkeeper.helpdesk.time.api import register as register_time  # noqa: E402

register_sla(router)
register_time(router)
register_billing(router)

from watchkeeper.monitoring import api as monitoring_api  # noqa: E402

monitoring_api.register(router)

from watchkeeper.monitoring import api_poller as monitoring_api_poller  # noqa: E402

monitoring_api_poller.register(router)


class SchemaView(SpectacularAPIView):
    permissions = {"GET": PUBLIC}


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file (the CSP forbids inline script)."""

    permissions = {"GET": PUBLIC}


from watchkeeper.patching.api import register as register_patching  # noqa: E402

register_patching(router)

urlpatterns = [
    path("schema", SchemaView.as_view(), name="api-schema"),
    path("docs", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("search/", views.SearchView.as_view(), name="api-search"),
    path("me/", users.MeView.as_view(), name="api-me"),
    path("webhooks/<id:webhook_pk>/deliveries/", views.WebhookDeliveryLogView.as_view(),
         name="webhook-deliveries"),
    *helpdesk_api.extra_urls(),
    *monitoring_api.extra_urls(),
    *monitoring_api_poller.extra_urls(),
    path("", include(router.urls)),
]
