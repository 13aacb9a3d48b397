"""Routes of heartbeats: the public ping URL and the pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("hb/<uuid:uid>", views.heartbeat_ping, name="heartbeat-ping"),
    path("hb/<uuid:uid>/start", views.heartbeat_ping, {"kind": "start"},
         name="heartbeat-ping-start"),
    path("hb/<uuid:uid>/fail", views.heartbeat_ping, {"kind": "fail"},
         name="heartbeat-ping-fail"),
    path("monitoring/heartbeats/", views.heartbeat_list, name="monitoring_heartbeats"),
    path("monitoring/heartbeats/<id:pk>/", views.heartbeat_detail,
         name="monitoring_heartbeat"),
]
