from django.urls import path

from . import views_poller

urlpatterns = [
    path("hb/<uuid:uid>", views_poller.heartbeat_ping, name="heartbeat-ping"),
    path("hb/<uuid:uid>/start", views_poller.heartbeat_ping, {"kind": "start"},
         name="heartbeat-ping-start"),
    path("hb/<uuid:uid>/fail", views_poller.heartbeat_ping, {"kind": "fail"},
         name="heartbeat-ping-fail"),
]
