from django.urls import path

from . import views

urlpatterns = [
    path("monitoring/alerts/", views.alert_console, name="alerts"),
    path("monitoring/alerts/bulk/", views.alert_bulk, name="alerts_bulk"),
    path("monitoring/alerts/<id:pk>/", views.alert_detail, name="alert_detail"),
    path("monitoring/health/", views.health, name="monitoring_health"),
    path("monitoring/policies/", views.policy_list, name="monitoring_policies"),
    path("monitoring/policies/<id:pk>/", views.policy_detail, name="monitoring_policy"),
    path("monitoring/maintenance/", views.maintenance_calendar, name="monitoring_maintenance"),
    path("monitoring/maintenance/<id:pk>/delete/", views.maintenance_delete,
         name="monitoring_maintenance_delete"),
    path("monitoring/devices/<id:pk>/checks/", views.device_checks,
         name="monitoring_device_checks"),
]
