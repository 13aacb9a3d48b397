"""Routes of the script library pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("scripts/", views.script_list, name="scripts"),
    path("scripts/new/", views.script_create, name="script_create"),
    path("scripts/<id:pk>/", views.script_detail, name="script_detail"),
    path("scripts/<id:pk>/edit/", views.script_edit, name="script_edit"),
    path("scripts/runs/<id:pk>/", views.script_run, name="script_run"),
    path("scripts/runs/<id:pk>/<str:verb>/", views.script_run_action, name="script_run_action"),
]
