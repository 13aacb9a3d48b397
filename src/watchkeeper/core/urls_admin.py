"""Admin pages for operations: audit log, event outbox, webhooks."""

from django.urls import path

from .views import admin_ops as v

urlpatterns = [
    path("admin/audit/", v.audit_log, name="audit_log"),
    path("admin/audit/<id:pk>/", v.audit_entry, name="audit_entry"),
    path("admin/events/", v.events, name="events"),
    path("admin/events/<uuid:pk>/", v.event_detail, name="event_detail"),
    path("admin/events/deliveries/<id:pk>/replay/", v.event_replay, name="event_replay"),
    path("admin/webhooks/", v.webhooks, name="webhooks"),
    path("admin/webhooks/new/", v.webhook_create, name="webhook_create"),
    path("admin/webhooks/<id:pk>/", v.webhook_detail, name="webhook_detail"),
    path("admin/webhooks/<id:pk>/edit/", v.webhook_edit, name="webhook_edit"),
    path("admin/webhooks/<id:pk>/toggle/", v.webhook_toggle, name="webhook_toggle"),
    path("admin/webhooks/<id:pk>/test/", v.webhook_test, name="webhook_test"),
    path("admin/webhooks/<id:pk>/delete/", v.webhook_delete, name="webhook_delete"),
]
