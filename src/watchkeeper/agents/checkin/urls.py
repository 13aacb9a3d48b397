from django.urls import include, path

from . import views as agent_api

urlpatterns = [
    path("enroll", agent_api.enroll, name="agent-enroll"),
    path("checkin", agent_api.checkin, name="agent-checkin"),
    path("status", agent_api.status, name="agent-status"),
    path("", include("watchkeeper.agents.installers.urls")),
]
