from django.urls import include, path

from . import views, views_policies

urlpatterns = [
    path("monitoring/alerts/", views.alert_console, name="alerts"),
    path("monitoring/alerts/bulk/", views.alert_bulk, name="alerts_bulk"),
    path("monitoring/alerts/<id:pk>/", views.alert_detail, name="alert_detail"),
    path("monitoring/alerts/<id:pk>/ticket/", views.alert_ticket, name="alert_ticket"),
    path("monitoring/health/", views.health, name="monitoring_health"),
    path("monitoring/policies/", views_policies.policy_list, name="monitoring_policies"),
    path("monitoring/policies/<id:pk>/", views_policies.policy_detail,
         name="monitoring_policy"),
    path("monitoring/policies/<id:pk>/delete/", views_policies.policy_delete,
         name="monitoring_policy_delete"),
    path("monitoring/checks/<id:pk>/", views_policies.check_detail, name="monitoring_check"),
    path("monitoring/checks/<id:pk>/delete/", views_policies.check_delete,
         name="monitoring_check_delete"),
    path("monitoring/maintenance/", views.maintenance_calendar, name="monitoring_maintenance"),
    path("monitoring/maintenance/<id:pk>/delete/", views.maintenance_delete,
         name="monitoring_maintenance_delete"),
    path("monitoring/devices/<id:pk>/checks/", views.device_checks,
         name="monitoring_device_checks"),
    path("", include("watchkeeper.monitoring.poller.urls")),
    path("", include("watchkeeper.monitoring.heartbeats.urls")),
    path("", include("watchkeeper.monitoring.channels.urls")),
    path("", include("watchkeeper.monitoring.ingest.urls")),
]
