"""Routes of the network-check pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("monitoring/network/", views.network_checks, name="monitoring_network_checks"),
    path("monitoring/network/new/", views.network_check_create,
         name="monitoring_network_check_new"),
    path("monitoring/network/<id:pk>/", views.network_check_detail,
         name="monitoring_network_check"),
    path("monitoring/network/<id:pk>/edit/", views.network_check_edit,
         name="monitoring_network_check_edit"),
]
