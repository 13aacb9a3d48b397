from django.urls import path

from . import views

urlpatterns = [
    path("monitoring/channels/", views.channel_list, name="monitoring_channels"),
    path("monitoring/channels/new/", views.channel_create, name="monitoring_channel_new"),
    path("monitoring/channels/catch-up-count/", views.channel_catch_up_preview,
         name="monitoring_channel_catch_up_count"),
    path("monitoring/channels/<id:pk>/", views.channel_detail, name="monitoring_channel"),
    path("monitoring/channels/<id:pk>/edit/", views.channel_edit,
         name="monitoring_channel_edit"),
    path("monitoring/channels/<id:pk>/catch-up/", views.channel_catch_up,
         name="monitoring_channel_catch_up"),
]
