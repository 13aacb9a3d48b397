from django.urls import path

from . import views, views_ops

urlpatterns = [
    path("devices/", views.device_list, name="devices"),
    path("devices/export.csv", views.device_export, name="devices_export"),
    path("devices/new", views.device_create, name="device_create"),
    path("devices/views/save", views.view_save, name="device_view_save"),
    path("devices/views/<id:pk>/delete", views.view_delete, name="device_view_delete"),
    path("devices/<id:pk>/", views.device_detail, name="device"),
    path("devices/<id:pk>/edit", views.device_edit, name="device_edit"),
    path("devices/<id:pk>/tab/<slug:tab>", views.device_tab, name="device_tab"),
    path("devices/<id:pk>/metrics.json", views.device_metrics, name="device_metrics"),
    path("inventory/conflicts/<id:pk>/resolve", views.conflict_resolve,
         name="inventory_conflict_resolve"),
    path("inventory/licences/", views.licence_list, name="inventory_licences"),
    path("inventory/licences/new", views.licence_edit, name="inventory_licence_create"),
    path("inventory/licences/<id:pk>/edit", views.licence_edit,
         name="inventory_licence_edit"),
    path("inventory/import/", views_ops.import_start, name="inventory_import_start"),
    path("inventory/import/<id:pk>/", views_ops.import_detail, name="inventory_import"),
    path("inventory/import/<id:pk>/apply", views_ops.import_apply,
         name="inventory_import_apply"),
    path("inventory/reconcile/", views_ops.reconcile, name="inventory_reconcile"),
    path("inventory/discovery/", views_ops.discovery_list, name="inventory_discovery"),
    path("inventory/discovery/<id:pk>/", views_ops.discovery_run,
         name="inventory_discovery_run"),
    path("inventory/discovery/hosts/<id:pk>", views_ops.discovery_host,
         name="inventory_discovery_host"),
]
