"""Core's part of the REST API: its viewsets (clients, sites, contacts, audit, events,
deliveries, webhooks, users, tokens) and views (schema, docs, search, me). The API's routes
are assembled at the project level (watchkeeper/api_urls.py), so core imports no app."""

from django.urls import path
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


def new_router() -> DefaultRouter:
    """The one router every app registers on: JSON only, no browsable root view."""
    router = Router(trailing_slash=True, use_regex_path=False)
    router.include_root_view = False
    router.include_format_suffixes = False  # JSON only: no /clients.json duplicates of routes
    return router


def register(router) -> None:
    router.register("clients", views.ClientViewSet, basename="client")
    router.register("sites", views.SiteViewSet, basename="site")
    router.register("contacts", views.ContactViewSet, basename="contact")
    router.register("audit", views.AuditViewSet, basename="audit")
    router.register("events", views.EventViewSet, basename="event")
    router.register("deliveries", views.DeliveryViewSet, basename="delivery")
    router.register("webhooks", views.WebhookViewSet, basename="webhook")
    router.register("users", users.UserViewSet, basename="user")
    router.register("tokens", users.TokenViewSet, basename="token")


class SchemaView(SpectacularAPIView):
    permissions = {"GET": PUBLIC}


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file (the CSP forbids inline script)."""

    permissions = {"GET": PUBLIC}


def extra_urls() -> list:
    return [
        path("schema", SchemaView.as_view(), name="api-schema"),
        path("docs", DocsView.as_view(url_name="api-schema"), name="api-docs"),
        path("search/", views.SearchView.as_view(), name="api-search"),
        path("me/", users.MeView.as_view(), name="api-me"),
        path("webhooks/<id:webhook_pk>/deliveries/", views.WebhookDeliveryLogView.as_view(),
             name="webhook-deliveries"),
    ]
