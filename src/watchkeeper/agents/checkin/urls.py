from django.urls import path

from . import views as agent_api

urlpatterns = [
    path("enroll", agent_api.enroll, name="agent-enroll"),
    path("checkin", agent_api.checkin, name="agent-checkin"),
    path("status", agent_api.status, name="agent-status"),
]
