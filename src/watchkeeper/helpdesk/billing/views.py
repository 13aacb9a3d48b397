"""Billing pages: contracts (with prepaid burn-down), work types, billing runs (create,
review lines with evidence, recompute, approve = lock, export CSV/JSON)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from watchkeeper.core.converters import filter_by_id
from watchkeeper.core.models import Client
from watchkeeper.core.permissions import requires
from watchkeeper.core.tenancy import scoped
from watchkeeper.inventory.choices import DeviceKind

from ..time import actions as timeentries
from ..time.models import WorkType
from . import actions as billing
from . import contracts
from .choices import ContractKind, RunStatus
from .models import BillingLine, BillingRun, Contract


def _errors(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


def _decimal(value: str, name: str) -> Decimal:
    try:
        return Decimal((value or "0").strip().replace(",", "."))
    except InvalidOperation as exc:
        raise ValidationError({name: f"{name.replace('_', ' ').capitalize()}: a number."}) \
            from exc


# --- Contracts ------------------------------------------------------------------------------

@requires("billing.view")
def contract_list(request):
    qs = scoped(Contract.objects.select_related("client"), request.user)
    client = request.GET.get("client", "")
    if client:
        qs = filter_by_id(qs, "client_id", client)
    rows = [{"contract": c, "burn": contracts.burn_down(c) if c.kind == ContractKind.PREPAID
             else None} for c in qs.order_by("client__name", "name")]
    return render(request, "helpdesk/contract_list.html", {"rows": rows, "section": "contracts"})


def _contract_values(post) -> dict:
    rates = {}
    for key, value in post.items():
        if key.startswith("rate-") and value.strip():
            rates[key.removeprefix("rate-")] = str(_decimal(value, "rates"))
    ends = post.get("ends_on", "").strip()
    return {
        "name": post.get("name", "").strip(), "kind": post.get("kind", ""),
        "starts_on": parse_date(post.get("starts_on", "")) or None,
        "ends_on": parse_date(ends) if ends else None,
        "unit_price": _decimal(post.get("unit_price"), "unit_price"),
        "device_kinds": post.getlist("device_kinds"),
        "hours": _decimal(post.get("hours"), "hours"),
        "overage_rate": _decimal(post.get("overage_rate"), "overage_rate"),
        "rates": rates, "is_active": post.get("is_active") == "on",
        "notes": post.get("notes", ""),
    }


@requires("billing.view")
def contract_edit(request, pk: int | None = None):
    contract = get_object_or_404(scoped(Contract.objects.all(), request.user), pk=pk) \
        if pk else None
    clients = scoped(Client.objects.filter(is_active=True), request.user)
    if request.method == "POST":
        from watchkeeper.core.permissions import has_capability

        if not has_capability(request.user, "billing.manage"):
            return HttpResponse("Forbidden", status=403)
        try:
            values = _contract_values(request.POST)
            if values["starts_on"] is None:
                raise ValidationError({"starts_on": "Give the start date."})
            if contract is None:
                client = get_object_or_404(clients, pk=request.POST.get("client") or 0)
                contract = contracts.create_contract(actor=request.user, client=client,
                                                     **values)
                messages.success(request, f"Contract {contract.name} created.")
            else:
                contracts.update_contract(actor=request.user, contract=contract, **values)
                messages.success(request, "Contract saved.")
            return redirect("contract", contract.pk)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    return render(request, "helpdesk/contract_form.html", {
        "contract": contract, "form": _form_values(request, contract), "clients": clients,
        "kinds": ContractKind.choices, "device_kinds": DeviceKind.choices,
        "work_types": [{"pk": w.pk, "name": w.name, "default_rate": w.default_rate}
                       for w in WorkType.objects.all()],
        "burn": contracts.burn_down(contract) if contract and
        contract.kind == ContractKind.PREPAID else None,
        "section": "contracts"})


def _form_values(request, contract: Contract | None) -> dict:
    """What the contract form shows: the posted values after an error, else the contract's,
    else the defaults of a new one."""
    if request.method == "POST":
        post = request.POST
        return {"client": post.get("client", ""), "name": post.get("name", ""),
                "kind": post.get("kind", ""), "starts_on": post.get("starts_on", ""),
                "ends_on": post.get("ends_on", ""), "unit_price": post.get("unit_price", "0"),
                "device_kinds": post.getlist("device_kinds"), "hours": post.get("hours", "0"),
                "overage_rate": post.get("overage_rate", "0"),
                "rates": {k.removeprefix("rate-"): v for k, v in post.items()
                          if k.startswith("rate-")},
                "is_active": post.get("is_active") == "on", "notes": post.get("notes", "")}
    if contract is None:
        return {"client": "", "name": "", "kind": ContractKind.PER_DEVICE,
                "starts_on": timezone.localdate().replace(day=1).isoformat(), "ends_on": "",
                "unit_price": "0", "device_kinds": [], "hours": "0", "overage_rate": "0",
                "rates": {}, "is_active": True, "notes": ""}
    return {"client": str(contract.client_id), "name": contract.name, "kind": contract.kind,
            "starts_on": contract.starts_on.isoformat(),
            "ends_on": contract.ends_on.isoformat() if contract.ends_on else "",
            "unit_price": str(contract.unit_price), "device_kinds": contract.device_kinds,
            "hours": str(contract.hours), "overage_rate": str(contract.overage_rate),
            "rates": contract.rates or {}, "is_active": contract.is_active,
            "notes": contract.notes}


# --- Work types -----------------------------------------------------------------------------

@requires("billing.view")
def work_types(request):
    if request.method == "POST":
        from watchkeeper.core.permissions import has_capability

        if not has_capability(request.user, "billing.manage"):
            return HttpResponse("Forbidden", status=403)
        try:
            timeentries.save_work_type(
                actor=request.user, name=request.POST.get("name", ""),
                default_rate=_decimal(request.POST.get("default_rate"), "default_rate"))
            messages.success(request, "Work type added.")
            return redirect("work_types")
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    return render(request, "helpdesk/work_types.html", {
        "work_types": WorkType.objects.all(), "section": "work_types"})


# --- Billing runs ---------------------------------------------------------------------------

@requires("billing.view")
def run_list(request):
    today = timezone.localdate()
    last_month = (today.replace(day=1) - date.resolution).replace(day=1)
    return render(request, "helpdesk/billing_runs.html", {
        "runs": BillingRun.objects.select_related("created_by", "approved_by")[:120],
        "default_period": f"{last_month:%Y-%m}", "section": "runs"})


@requires("billing.manage")
@require_POST
def run_create(request):
    try:
        run = billing.create_run(actor=request.user, period=request.POST.get("period", ""))
        messages.success(request, f"Billing run for {run.period_start:%B %Y} computed.")
        return redirect("billing_run", run.pk)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("billing_runs")


def _lines(request, run: BillingRun):
    return scoped(BillingLine.objects.filter(run=run), request.user) \
        .select_related("client", "contract")


@requires("billing.view")
def run_detail(request, pk: int):
    run = get_object_or_404(BillingRun.objects.select_related("supersedes", "approved_by"),
                            pk=pk)
    lines = list(_lines(request, run))
    groups: list[dict] = []
    for line in lines:
        if not groups or groups[-1]["client"].pk != line.client_id:
            groups.append({"client": line.client, "lines": [], "total": Decimal(0)})
        groups[-1]["lines"].append(line)
        groups[-1]["total"] += line.amount
    return render(request, "helpdesk/billing_run.html", {
        "run": run, "groups": groups, "locked": run.status != RunStatus.DRAFT,
        "superseded_by": run.superseded_by.order_by("-id").first(), "section": "runs"})


def _run_post(request, pk: int, func, done: str):
    run = get_object_or_404(BillingRun, pk=pk)
    try:
        func(actor=request.user, run=run)
        messages.success(request, done)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return run


@requires("billing.manage")
@require_POST
def run_recompute(request, pk: int):
    run = _run_post(request, pk, billing.recompute_run, "Recomputed.")
    return redirect("billing_run", run.pk)


@requires("billing.manage")
@require_POST
def run_approve(request, pk: int):
    run = _run_post(request, pk, billing.approve_run,
                    "Approved: the run and the time it billed are locked.")
    return redirect("billing_run", run.pk)


@requires("billing.manage")
@require_POST
def run_delete(request, pk: int):
    _run_post(request, pk, billing.delete_run, "Draft run deleted.")
    return redirect("billing_runs")


@requires("billing.view")
def run_export(request, pk: int, fmt: str):
    if fmt not in ("csv", "json"):
        raise Http404("Export as .csv or .json")
    run = get_object_or_404(BillingRun, pk=pk)
    lines = _lines(request, run)
    if fmt == "csv":
        body, ctype = billing.export_csv(run, lines), "text/csv; charset=utf-8"
    else:
        body, ctype = billing.export_json(run, lines), "application/json"
    response = HttpResponse(body, content_type=ctype)
    response["Content-Disposition"] = (
        f'attachment; filename="billing-{run.period_start:%Y-%m}-run{run.pk}.{fmt}"')
    response["X-Content-Type-Options"] = "nosniff"
    return response


contract_edit.wk_model = Contract
for _view in (run_detail, run_recompute, run_approve, run_delete, run_export):
    _view.wk_model = BillingRun
