from django.urls import include, path

from . import views

urlpatterns = [
    path("agents/", views.agent_list, name="agents"),
    path("agents/enrollment/", views.enrollment, name="agents_enrollment"),
    path("agents/enrollment/<id:pk>/revoke/", views.token_revoke, name="agents_token_revoke"),
    path("agents/quarantine/", views.quarantine, name="agents_quarantine"),
    path("agents/kill-switch/", views.kill_switch, name="agents_kill_switch"),
    path("agents/<id:pk>/", views.agent_detail, name="agent_detail"),
    path("agents/<id:pk>/<str:verb>/", views.agent_action, name="agent_action"),
    path("", include("watchkeeper.agents.scripts.urls")),
]
