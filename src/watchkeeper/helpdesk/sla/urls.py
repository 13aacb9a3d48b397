"""Routes of the SLA pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("tickets/sla/breaches/", views.breaches, name="sla_breaches"),
    path("tickets/sla/clocks/<id:pk>/reason", views.breach_reason,
         name="sla_breach_reason"),
    path("tickets/sla/policies/", views.policies, name="sla_policies"),
    path("tickets/sla/policies/edit", views.policy_edit, name="sla_policy_edit"),
]
