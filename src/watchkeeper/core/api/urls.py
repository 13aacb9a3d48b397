from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ..permissions import PUBLIC
from . import users, views

router = DefaultRouter(trailing_slash=True)
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


class DocsView(SpectacularSwaggerView):
    permissions = {"GET": PUBLIC}


from watchkeeper.patching.api import register as register_patching  # noqa: E402

register_patching(router)

urlpatterns = [
    path("schema", SchemaView.as_view(), name="api-schema"),
    path("docs", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("search/", views.SearchView.as_view(), name="api-search"),
    path("me/", users.MeView.as_view(), name="api-me"),
    path("webhooks/<int:webhook_pk>/deliveries/", views.WebhookDeliveryLogView.as_view(),
         name="webhook-deliveries"),
    *helpdesk_api.extra_urls(),
    *monitoring_api.extra_urls(),
    *monitoring_api_poller.extra_urls(),
    path("", include(router.urls)),
]
