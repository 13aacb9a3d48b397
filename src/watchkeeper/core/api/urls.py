"""Core's part of the REST API: its viewsets (clients, sites, contacts, audit, events,
deliveries, webhooks, users, tokens) and views (schema, docs, search, me). The API's routes
are assembled at the project level (watchkeeper/api_urls.py), so core imports no app."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ..permissions import PUBLIC
from . import users, views


def new_router() -> DefaultRouter:
    """The one router every app registers on: JSON only, no browsable root view."""
    router = DefaultRouter(trailing_slash=True)
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


class DocsView(SpectacularSwaggerView):
    permissions = {"GET": PUBLIC}


def extra_urls() -> list:
    return [
        path("schema", SchemaView.as_view(), name="api-schema"),
        path("docs", DocsView.as_view(url_name="api-schema"), name="api-docs"),
        path("search/", views.SearchView.as_view(), name="api-search"),
        path("me/", users.MeView.as_view(), name="api-me"),
        path("webhooks/<int:webhook_pk>/deliveries/", views.WebhookDeliveryLogView.as_view(),
             name="webhook-deliveries"),
    ]
