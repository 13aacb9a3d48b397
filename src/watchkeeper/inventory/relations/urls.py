"""Routes of device relations (the list itself is a tab of the device page)."""

from django.urls import path

from . import views

urlpatterns = [
    path("devices/<id:pk>/relations/add", views.relation_add, name="device_relation_add"),
    path("inventory/relations/<id:pk>/delete", views.relation_delete,
         name="device_relation_delete"),
]
