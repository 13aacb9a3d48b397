"""Routes of the contract, work-type and billing-run pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("billing/contracts/", views.contract_list, name="contracts"),
    path("billing/contracts/new", views.contract_edit, name="contract_create"),
    path("billing/contracts/<id:pk>/", views.contract_edit, name="contract"),
    path("billing/work-types/", views.work_types, name="work_types"),
    path("billing/runs/", views.run_list, name="billing_runs"),
    path("billing/runs/new", views.run_create, name="billing_run_create"),
    path("billing/runs/<id:pk>/", views.run_detail, name="billing_run"),
    path("billing/runs/<id:pk>/recompute", views.run_recompute,
         name="billing_run_recompute"),
    path("billing/runs/<id:pk>/approve", views.run_approve,
         name="billing_run_approve"),
    path("billing/runs/<id:pk>/delete", views.run_delete, name="billing_run_delete"),
    path("billing/runs/<id:pk>/export.<str:fmt>", views.run_export,
         name="billing_run_export"),
]
