"""Routes of the import wizard."""

from django.urls import path

from . import views

urlpatterns = [
    path("inventory/import/", views.import_start, name="inventory_import_start"),
    path("inventory/import/<id:pk>/", views.import_detail, name="inventory_import"),
    path("inventory/import/<id:pk>/apply", views.import_apply,
         name="inventory_import_apply"),
]
