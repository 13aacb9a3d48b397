"""SLA pages: the breaches list (with the technician's reason) and the policies."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from watchkeeper.core.converters import parse_id
from watchkeeper.core.models import Client, User
from watchkeeper.core.permissions import requires
from watchkeeper.core.tenancy import scoped

from ..billing.models import Contract
from ..choices import Priority
from . import actions as sla
from .choices import ClockState, Metric
from .models import SlaClock, SlaPolicy


def _errors(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


@requires("tickets.view")
def breaches(request):
    """Every breached clock the user may see, newest first; `?open=1` only open tickets;
    `?view=due` the running clocks not yet breached, soonest due first (what is at risk)."""
    due_view = request.GET.get("view") == "due"
    related = ("ticket", "ticket__client", "ticket__assignee", "policy", "breach_reason_by")
    if due_view:
        qs = scoped(SlaClock.objects.filter(breached_at__isnull=True,
                                            state=ClockState.RUNNING), request.user) \
            .select_related(*related).order_by("due_at", "id")
    else:
        qs = scoped(SlaClock.objects.filter(breached_at__isnull=False), request.user) \
            .select_related(*related).order_by("-breached_at", "-id")
    only_open = request.GET.get("open") == "1" and not due_view
    if only_open:
        from ..choices import OPEN_STATUSES

        qs = qs.filter(ticket__status__in=OPEN_STATUSES)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    cache: dict = {}
    for clock in page.object_list:
        clock.remaining = sla.remaining_seconds(clock, calendars_by_client=cache)
    return render(request, "helpdesk/sla_breaches.html", {
        "page": page, "only_open": only_open, "due_view": due_view, "section": "sla"})


@requires("tickets.change")
@require_POST
def breach_reason(request, pk: int):
    clock = get_object_or_404(scoped(SlaClock.objects.all(), request.user), pk=pk)
    try:
        sla.record_breach_reason(actor=request.user, clock=clock,
                                 reason=request.POST.get("reason", ""))
        messages.success(request, "Reason recorded.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect(request.POST.get("next") if request.POST.get("next", "").startswith(
        "/tickets/") else "sla_breaches")


@requires("tickets.view")
def policies(request):
    current = scoped(SlaPolicy.objects.filter(is_current=True), request.user) \
        .select_related("client", "contract", "escalate_to").order_by("scope")
    return render(request, "helpdesk/sla_policies.html", {
        "policies": current, "section": "sla", "priorities": Priority.choices,
        "metrics": Metric.choices})


@requires("tickets.admin")
def policy_edit(request):
    """Write a new version of a scope's policy (the form starts from the current one)."""
    clients = scoped(Client.objects.filter(is_active=True), request.user)
    contract_qs = scoped(Contract.objects.filter(is_active=True), request.user) \
        .select_related("client")
    staff = User.objects.filter(is_active=True).exclude(role="client_user").order_by("email")
    scope = request.POST.get("scope") or request.GET.get("scope") or "default"
    base = SlaPolicy.objects.filter(scope=scope, is_current=True).first()
    if request.method == "POST":
        client = contract = None
        if scope.startswith("client:"):
            client = get_object_or_404(clients, pk=scope.split(":")[1])
        elif scope.startswith("contract:"):
            contract = get_object_or_404(contract_qs, pk=scope.split(":")[1])
        targets = {p: {m: request.POST.get(f"{p}-{m}", "").strip() for m, _ in Metric.choices}
                   for p, _ in Priority.choices}
        escalate = request.POST.get("escalate_to", "")
        try:
            policy = sla.save_policy(
                actor=request.user, name=request.POST.get("name", "").strip() or "SLA",
                targets=targets, client=client, contract=contract,
                warning_percent=int(request.POST.get("warning_percent") or 75),
                escalate_to=staff.filter(pk=parse_id(escalate)).first()
                if parse_id(escalate) is not None else None)
            messages.success(request, f"Saved {policy.name} v{policy.version}.")
            return redirect("sla_policies")
        except (ValidationError, ValueError) as exc:
            messages.error(request, _errors(exc) if isinstance(exc, ValidationError)
                           else "The warning share must be a whole number.")
    rows = [{"value": p, "label": label,
             "cells": [{"metric": m, "value": base.target_minutes(p, m) if base else ""}
                       for m, _ in Metric.choices]}
            for p, label in Priority.choices]
    scopes = [("default", "Every client (default)")]
    scopes += [(f"client:{c.pk}", f"Client: {c.name}") for c in clients]
    scopes += [(f"contract:{c.pk}", f"Contract: {c.name} ({c.client.name})") for c in contract_qs]
    return render(request, "helpdesk/sla_policy_form.html", {
        "scope": scope, "scopes": scopes, "base": base, "rows": rows,
        "metrics": Metric.choices, "staff": staff, "section": "sla"})


breach_reason.wk_model = SlaClock
