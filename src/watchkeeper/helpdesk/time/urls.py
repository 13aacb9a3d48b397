"""Routes of time entries and timers on a ticket."""

from django.urls import path

from . import views

urlpatterns = [
    path("tickets/<id:pk>/time", views.time_log, name="time_log"),
    path("tickets/<id:pk>/timer", views.timer_start, name="timer_start"),
    path("tickets/timers/<id:pk>/stop", views.timer_stop, name="timer_stop"),
    path("tickets/timers/<id:pk>/discard", views.timer_discard, name="timer_discard"),
    path("tickets/time/<id:pk>/delete", views.time_delete, name="time_delete"),
]
