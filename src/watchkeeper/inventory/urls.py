from django.urls import include, path

from . import views

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
    path("inventory/reconcile/", views.reconcile, name="inventory_reconcile"),
    path("", include("watchkeeper.inventory.imports.urls")),
    path("", include("watchkeeper.inventory.discovery.urls")),
    path("", include("watchkeeper.inventory.relations.urls")),
]
