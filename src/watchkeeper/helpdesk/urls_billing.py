"""Routes of the SLA, time and billing pages (G2's part of the helpdesk)."""

from django.urls import path

from . import views_billing, views_sla, views_time

urlpatterns = [
    path("tickets/sla/breaches/", views_sla.breaches, name="sla_breaches"),
    path("tickets/sla/clocks/<id:pk>/reason", views_sla.breach_reason,
         name="sla_breach_reason"),
    path("tickets/sla/policies/", views_sla.policies, name="sla_policies"),
    path("tickets/sla/policies/edit", views_sla.policy_edit, name="sla_policy_edit"),
    path("tickets/<id:pk>/time", views_time.time_log, name="time_log"),
    path("tickets/<id:pk>/timer", views_time.timer_start, name="timer_start"),
    path("tickets/timers/<id:pk>/stop", views_time.timer_stop, name="timer_stop"),
    path("tickets/timers/<id:pk>/discard", views_time.timer_discard, name="timer_discard"),
    path("tickets/time/<id:pk>/delete", views_time.time_delete, name="time_delete"),
    path("billing/contracts/", views_billing.contract_list, name="contracts"),
    path("billing/contracts/new", views_billing.contract_edit, name="contract_create"),
    path("billing/contracts/<id:pk>/", views_billing.contract_edit, name="contract"),
    path("billing/work-types/", views_billing.work_types, name="work_types"),
    path("billing/runs/", views_billing.run_list, name="billing_runs"),
    path("billing/runs/new", views_billing.run_create, name="billing_run_create"),
    path("billing/runs/<id:pk>/", views_billing.run_detail, name="billing_run"),
    path("billing/runs/<id:pk>/recompute", views_billing.run_recompute,
         name="billing_run_recompute"),
    path("billing/runs/<id:pk>/approve", views_billing.run_approve,
         name="billing_run_approve"),
    path("billing/runs/<id:pk>/delete", views_billing.run_delete, name="billing_run_delete"),
    path("billing/runs/<id:pk>/export.<str:fmt>", views_billing.run_export,
         name="billing_run_export"),
]
