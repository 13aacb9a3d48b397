from django.urls import path

from . import views

urlpatterns = [
    path("patching/", views.update_list, name="patching_updates"),
    path("patching/compliance/", views.compliance, name="patching_compliance"),
    path("patching/compliance/<id:client_id>/", views.client_compliance,
         name="patching_client"),
    path("patching/devices/<id:pk>/", views.device_updates, name="patching_device"),
]
