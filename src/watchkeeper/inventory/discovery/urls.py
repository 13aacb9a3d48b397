"""Routes of network discovery."""

from django.urls import path

from . import views

urlpatterns = [
    path("inventory/discovery/", views.discovery_list, name="inventory_discovery"),
    path("inventory/discovery/<id:pk>/", views.discovery_run,
         name="inventory_discovery_run"),
    path("inventory/discovery/hosts/<id:pk>", views.discovery_host,
         name="inventory_discovery_host"),
]
