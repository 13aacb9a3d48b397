from django.urls import path

from . import views_poller

urlpatterns = [
    path("hb/<uuid:uid>", views_poller.heartbeat_ping, name="heartbeat-ping"),
    path("hb/<uuid:uid>/start", views_poller.heartbeat_ping, {"kind": "start"},
         name="heartbeat-ping-start"),
    path("hb/<uuid:uid>/fail", views_poller.heartbeat_ping, {"kind": "fail"},
         name="heartbeat-ping-fail"),
    path("monitoring/network/", views_poller.network_checks,
         name="monitoring_network_checks"),
    path("monitoring/network/new/", views_poller.network_check_create,
         name="monitoring_network_check_new"),
    path("monitoring/network/<id:pk>/", views_poller.network_check_detail,
         name="monitoring_network_check"),
    path("monitoring/network/<id:pk>/edit/", views_poller.network_check_edit,
         name="monitoring_network_check_edit"),
    path("monitoring/heartbeats/", views_poller.heartbeat_list, name="monitoring_heartbeats"),
    path("monitoring/heartbeats/<id:pk>/", views_poller.heartbeat_detail,
         name="monitoring_heartbeat"),
]
