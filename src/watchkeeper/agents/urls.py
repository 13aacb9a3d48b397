from django.urls import path

from . import views

urlpatterns = [
    path("agents/", views.agent_list, name="agents"),
    path("agents/enrollment/", views.enrollment, name="agents_enrollment"),
    path("agents/enrollment/<id:pk>/revoke/", views.token_revoke, name="agents_token_revoke"),
    path("agents/quarantine/", views.quarantine, name="agents_quarantine"),
    path("agents/kill-switch/", views.kill_switch, name="agents_kill_switch"),
    path("agents/<id:pk>/", views.agent_detail, name="agent_detail"),
    path("agents/<id:pk>/<str:verb>/", views.agent_action, name="agent_action"),
    path("scripts/", views.script_list, name="scripts"),
    path("scripts/new/", views.script_create, name="script_create"),
    path("scripts/<id:pk>/", views.script_detail, name="script_detail"),
    path("scripts/<id:pk>/edit/", views.script_edit, name="script_edit"),
    path("scripts/runs/<id:pk>/", views.script_run, name="script_run"),
    path("scripts/runs/<id:pk>/<str:verb>/", views.script_run_action, name="script_run_action"),
]
