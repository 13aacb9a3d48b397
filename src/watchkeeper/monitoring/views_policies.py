"""Policy and check pages: the policy list, a policy's page (settings, ticket settings,
checks, assignments with a picker, what-if, delete), a check's page (form editor per kind,
enable / disable, overrides per level, delete). Every change can be previewed first: the
change is applied in a transaction that is rolled back, and the what-if of the policy as it
would then be is shown with the number of devices it reaches.

Reads through scoped(); writes through actions; targets are chosen from pickers, never typed
as ids."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from watchkeeper.core.models import Client, Site
from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import can_see_client, scoped
from watchkeeper.inventory.selectors import all_devices

from . import actions, policies
from .check_forms import CheckForm, OverrideForm
from .choices import OPEN_STATUSES, Scope, State
from .models import Alert, Check, CheckOverride, DeviceGroup, Policy

WHAT_IF_DAYS = 7


# --- Forms ------------------------------------------------------------------------------------

class PolicyForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    client = forms.ModelChoiceField(queryset=Client.objects.none(), required=False,
                                    empty_label="Every client (MSP-wide)")
    is_enabled = forms.BooleanField(required=False, initial=False,
                                    label="Enabled (run what-if first)")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["client"].queryset = scoped(Client.objects.order_by("name"), user)

    def clean_client(self):
        client = self.cleaned_data.get("client")
        if not can_see_client(self.user, client.pk if client else None):
            raise forms.ValidationError("Choose a client: only roles that see every client "
                                        "may create MSP-wide policies.")
        return client


class PolicySettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    ticket_severities = forms.MultipleChoiceField(
        required=False, label="Open a ticket for alerts that are",
        choices=[(State.CRITICAL, "Critical"), (State.WARNING, "Warning")],
        widget=forms.CheckboxSelectMultiple)
    ticket_resolve_on_recovery = forms.BooleanField(
        required=False, label="Resolve the ticket when the alert recovers")
    escalate_after_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=60 * 24 * 7,
        label="Escalate when unacknowledged for (minutes)", help_text="Empty: never.")


class AssignForm(forms.Form):
    target = forms.ChoiceField(label="Assign to")

    def __init__(self, *args, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = targets


def target_choices(user, policy: Policy) -> list:
    """The picker of the levels a policy (or an override of its checks) can apply at,
    grouped: everywhere, clients, sites, device groups, devices — as names, scoped to what
    the user sees and to the policy's client."""
    clients = scoped(Client.objects.order_by("name"), user)
    sites = scoped(Site.objects.select_related("client").order_by("client__name", "name"),
                   user)
    groups = scoped(DeviceGroup.objects.select_related("client").order_by("client__name",
                                                                          "name"), user)
    devices = scoped(all_devices().select_related("client").order_by("client__name", "name"),
                     user)
    if policy.client_id:
        clients = clients.filter(pk=policy.client_id)
        sites, groups, devices = (qs.filter(client_id=policy.client_id)
                                  for qs in (sites, groups, devices))
    choices: list = [("", "Choose where")]
    if not policy.client_id and can_see_client(user, None):
        choices.append(("global", "Everywhere (every client)"))
    choices.append(("Clients", [(f"client:{c.pk}", c.name) for c in clients]))
    choices.append(("Sites", [(f"site:{s.pk}", f"{s.client.name} › {s.name}") for s in sites]))
    group_rows = [(f"group:{g.pk}", f"{g.client.name} › {g.name}") for g in groups]
    if group_rows:
        choices.append(("Device groups", group_rows))
    choices.append(("Devices", [(f"device:{d.pk}", f"{d.client.name} › {d.name}")
                                for d in devices[:5000]]))
    return choices


_TARGET_MODELS = {Scope.CLIENT: Client, Scope.SITE: Site, Scope.GROUP: DeviceGroup,
                  Scope.DEVICE: all_devices().model}


def resolve_target(user, raw: str) -> tuple[str, Any]:
    """("client", <Client>) from "client:12", checked through scoped(); ActionError when
    unknown or not visible."""
    if raw == "global":
        if not can_see_client(user, None):
            raise actions.ActionError("Only roles that see every client may assign "
                                      "everywhere.")
        return Scope.GLOBAL, None
    scope, _, pk = raw.partition(":")
    model = _TARGET_MODELS.get(scope)
    if model is None or not pk.isdigit():
        raise actions.ActionError("Choose where.")
    target = scoped(model.objects.all(), user).filter(pk=int(pk)).first()
    if target is None:
        raise actions.ActionError("That target no longer exists.")
    return scope, target


def describe_level(row) -> str:
    """"Client Acme › site Main" for an assignment or override row."""
    if row.scope == Scope.GLOBAL:
        return "Everywhere"
    if row.scope == Scope.CLIENT:
        return f"Client {row.client.name}"
    if row.scope == Scope.SITE:
        return f"Site {row.client.name} › {row.site.name}"
    if row.scope == Scope.GROUP:
        return f"Device group {row.client.name} › {row.group.name}"
    return f"Device {row.client.name} › {row.device.name}"


# --- What-if preview --------------------------------------------------------------------------

class _Rollback(Exception):  # noqa: N818 - a control-flow signal, not an error
    pass


def visible_reach(user, policy: Policy) -> list[int]:
    return sorted(scoped(all_devices(), user).filter(
        pk__in=policies.devices_of_policy(policy)).values_list("id", flat=True))


def run_what_if(user, policy: Policy, days: int = WHAT_IF_DAYS) -> dict[str, Any]:
    reach = visible_reach(user, policy)
    result = policies.what_if(policy, days=days, device_ids=reach)
    result["devices_reached"] = len(reach)
    return result


def preview(user, policy: Policy, change) -> dict[str, Any]:
    """The what-if of `policy` as it would be after `change()`, which runs in a transaction
    that is then rolled back: nothing is saved, no audit row or event stays."""
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            change()
            policy.refresh_from_db()
            result = run_what_if(user, policy)
            raise _Rollback
    except _Rollback:
        pass
    policy.refresh_from_db()
    return result


# --- Policy list and page ---------------------------------------------------------------------

@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def policy_list(request):
    can_change = has_capability(request.user, "monitoring.change")
    form = PolicyForm(request.POST or None, user=request.user)
    if request.method == "POST" and can_change and form.is_valid():
        policy = actions.create_policy(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Policy {policy.name} created.")
        return redirect("monitoring_policy", policy.pk)
    qs = scoped(Policy.objects.select_related("client").annotate(
        n_checks=Count("checks", distinct=True),
        n_assign=Count("assignments", distinct=True)), request.user)
    return render(request, "monitoring/policy_list.html", {
        "policies": qs.order_by("name", "id")[:500], "form": form, "can_change": can_change})


def _settings_initial(policy: Policy) -> dict:
    return {"name": policy.name, "description": policy.description,
            "ticket_severities": policy.ticket_severities or [],
            "ticket_resolve_on_recovery": policy.ticket_resolve_on_recovery,
            "escalate_after_minutes": policy.escalate_after_minutes}


@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def policy_detail(request, pk: int):
    policy = get_object_or_404(scoped(Policy.objects.select_related("client"), request.user),
                               pk=pk)
    can_change = has_capability(request.user, "monitoring.change")
    targets = target_choices(request.user, policy)
    check_form = CheckForm(prefix="check")
    assign_form = AssignForm(prefix="assign", targets=targets)
    settings_form = PolicySettingsForm(prefix="settings", initial=_settings_initial(policy))
    what_if = check_preview = assign_preview = None
    if request.method == "POST":
        verb = request.POST.get("verb") or ""
        wants_preview = request.POST.get("preview") == "1"
        if verb == "what-if":
            try:
                days = max(1, min(int(request.POST.get("days") or WHAT_IF_DAYS), 90))
            except ValueError:
                days = WHAT_IF_DAYS
            what_if = run_what_if(request.user, policy, days)
        elif not can_change:
            messages.error(request, "You may not change policies.")
            return redirect("monitoring_policy", policy.pk)
        elif verb == "add-check":
            check_form = CheckForm(request.POST, prefix="check")
            if check_form.is_valid():
                data = check_form.cleaned_data

                def add():
                    actions.add_check(actor=request.user, policy=policy,
                                      kind=data["kind"], **check_form.check_fields())
                try:
                    if wants_preview:
                        check_preview = preview(request.user, policy, add)
                    else:
                        with transaction.atomic():
                            add()
                        messages.success(request, f"Check {data['name']} added.")
                        return redirect("monitoring_policy", policy.pk)
                except (actions.ActionError, ValidationError) as exc:
                    check_form.add_error(None, _message(exc))
                except IntegrityError:
                    check_form.add_error("name", "This policy already has a check of that "
                                                 "name.")
        elif verb == "assign":
            assign_form = AssignForm(request.POST, prefix="assign", targets=targets)
            if assign_form.is_valid():
                try:
                    scope, target = resolve_target(request.user,
                                                   assign_form.cleaned_data["target"])

                    def assign():
                        actions.assign_policy(actor=request.user, policy=policy,
                                              scope=scope, target=target)
                    if wants_preview:
                        assign_preview = preview(request.user, policy, assign)
                    else:
                        with transaction.atomic():
                            assign()
                        messages.success(request, "Policy assigned.")
                        return redirect("monitoring_policy", policy.pk)
                except actions.ActionError as exc:
                    assign_form.add_error("target", str(exc))
                except (IntegrityError, ValidationError):
                    assign_form.add_error("target", "The policy is already assigned there.")
        elif verb == "unassign":
            assignment = scoped(policy.assignments.all(), request.user).filter(
                pk=request.POST.get("assignment") or 0).first()
            if assignment is None:
                messages.error(request, "That assignment no longer exists.")
            else:
                actions.unassign_policy(actor=request.user, assignment=assignment)
                messages.success(request, "Assignment removed.")
            return redirect("monitoring_policy", policy.pk)
        elif verb == "settings":
            settings_form = PolicySettingsForm(request.POST, prefix="settings")
            if settings_form.is_valid():
                actions.update_policy(actor=request.user, policy=policy,
                                      **settings_form.cleaned_data)
                messages.success(request, "Policy settings saved.")
                return redirect("monitoring_policy", policy.pk)
        elif verb in ("enable", "disable"):
            actions.update_policy(actor=request.user, policy=policy,
                                  is_enabled=verb == "enable")
            messages.success(request, f"Policy {'enabled' if verb == 'enable' else 'disabled'}.")
            return redirect("monitoring_policy", policy.pk)
    assignments = scoped(policy.assignments.select_related("client", "site", "group",
                                                           "device"), request.user)
    return render(request, "monitoring/policy_detail.html", {
        "policy": policy, "checks": policy.checks.order_by("name"),
        "assignments": [(a, describe_level(a)) for a in assignments],
        "versions": policy.versions.select_related("created_by")[:10],
        "check_form": check_form, "assign_form": assign_form, "settings_form": settings_form,
        "what_if": what_if, "check_preview": check_preview, "assign_preview": assign_preview,
        "can_change": can_change, "metric_names": _metric_names()})


policy_detail.wk_model = Policy


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def _metric_names() -> list[tuple[str, str]]:
    from watchkeeper.agents.selectors import all_metric_names

    from .check_forms import metric_label

    return [(n, metric_label(n)) for n in
            all_metric_names().order_by("name").values_list("name", flat=True)[:500]]


@requires("monitoring.change")
@require_http_methods(["GET", "POST"])
def policy_delete(request, pk: int):
    policy = get_object_or_404(scoped(Policy.objects.select_related("client"), request.user),
                               pk=pk)
    if not can_see_client(request.user, policy.client_id):
        return redirect("monitoring_policy", policy.pk)
    if request.method == "POST":
        name = policy.name
        actions.delete_policy(actor=request.user, policy=policy)
        messages.success(request, f"Policy {name} deleted.")
        return redirect("monitoring_policies")
    open_alerts = Alert.objects.filter(check_template__policy=policy,
                                       status__in=OPEN_STATUSES).count()
    return render(request, "monitoring/confirm_delete.html", {
        "title": f"Delete the policy {policy.name}?", "object": policy,
        "back": f"/monitoring/policies/{policy.pk}/",
        "consequences": [f"{policy.checks.count()} check(s) and "
                         f"{policy.assignments.count()} assignment(s) are deleted with it.",
                         f"{open_alerts} open alert(s) of its checks are resolved.",
                         f"It stops running on {len(policies.devices_of_policy(policy))} "
                         "device(s)."]})


policy_delete.wk_model = Policy


# --- A check ---------------------------------------------------------------------------------

@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def check_detail(request, pk: int):
    check = get_object_or_404(scoped(Check.objects.select_related("policy__client"),
                                     request.user), pk=pk)
    policy = check.policy
    can_change = has_capability(request.user, "monitoring.change")
    targets = target_choices(request.user, policy)
    form = CheckForm(check=check)
    override_form = OverrideForm(prefix="override", check=check, targets=targets)
    check_preview = None
    if request.method == "POST":
        verb = request.POST.get("verb") or ""
        if not can_change:
            messages.error(request, "You may not change checks.")
            return redirect("monitoring_check", check.pk)
        if verb == "save":
            form = CheckForm(request.POST, check=check)
            if form.is_valid():
                def change():
                    actions.update_check(actor=request.user, check=check,
                                         **form.check_fields())
                try:
                    if request.POST.get("preview") == "1":
                        check_preview = preview(request.user, policy, change)
                        check.refresh_from_db()
                    else:
                        with transaction.atomic():
                            change()
                        messages.success(request, f"Check {check.name} saved.")
                        return redirect("monitoring_check", check.pk)
                except (actions.ActionError, ValidationError) as exc:
                    form.add_error(None, _message(exc))
                except IntegrityError:
                    form.add_error("name", "This policy already has a check of that name.")
        elif verb in ("enable", "disable"):
            actions.update_check(actor=request.user, check=check, is_enabled=verb == "enable")
            messages.success(request, f"Check {check.name} "
                                      f"{'enabled' if verb == 'enable' else 'disabled'}.")
            return redirect("monitoring_check", check.pk)
        elif verb == "override":
            override_form = OverrideForm(request.POST, prefix="override", check=check,
                                         targets=targets)
            if override_form.is_valid():
                data = override_form.cleaned_data
                try:
                    scope, target = resolve_target(request.user, data["target"])
                    actions.set_override(actor=request.user, check=check, scope=scope,
                                         target=target, is_enabled=data["is_enabled"],
                                         config=data["config"])
                except actions.ActionError as exc:
                    override_form.add_error(None, str(exc))
                else:
                    messages.success(request, "Override saved.")
                    return redirect("monitoring_check", check.pk)
        elif verb == "remove-override":
            override = scoped(check.overrides.all(), request.user).filter(
                pk=request.POST.get("override") or 0).first()
            if override is not None:
                actions.delete_override(actor=request.user, override=override)
                messages.success(request, "Override removed.")
            return redirect("monitoring_check", check.pk)
    overrides = scoped(check.overrides.select_related("client", "site", "group", "device"),
                       request.user)
    return render(request, "monitoring/check_detail.html", {
        "check": check, "policy": policy, "form": form, "override_form": override_form,
        "overrides": [(o, describe_level(o), _describe_override(check, o)) for o in overrides],
        "check_preview": check_preview, "can_change": can_change,
        "metric_names": _metric_names(),
        "open_alerts": Alert.objects.filter(check_template=check,
                                            status__in=OPEN_STATUSES).count()})


check_detail.wk_model = Check


def _describe_override(check: Check, override: CheckOverride) -> str:
    from .check_forms import SPECS

    parts = []
    if override.is_enabled is False:
        parts.append("not run")
    elif override.is_enabled:
        parts.append("run")
    labels = {s.key: s for s in SPECS.get(check.kind, [])}
    for key, value in (override.config or {}).items():
        spec = labels.get(key)
        if spec is None:
            parts.append(f"{key} {value}")
            continue
        shown = value / spec.scale if spec.scale != 1 else value
        parts.append(f"{spec.label.lower()} {shown:g} {spec.unit}".strip()
                     if isinstance(shown, int | float) and not isinstance(shown, bool)
                     else f"{spec.label.lower()}: {shown}")
    return ", ".join(parts)


@requires("monitoring.change")
@require_http_methods(["GET", "POST"])
def check_delete(request, pk: int):
    check = get_object_or_404(scoped(Check.objects.select_related("policy"), request.user),
                              pk=pk)
    policy = check.policy
    if request.method == "POST":
        actions.delete_check(actor=request.user, check=check)
        messages.success(request, f"Check {check.name} deleted.")
        return redirect("monitoring_policy", policy.pk)
    open_alerts = Alert.objects.filter(check_template=check, status__in=OPEN_STATUSES).count()
    return render(request, "monitoring/confirm_delete.html", {
        "title": f"Delete the check {check.name}?", "object": check,
        "back": f"/monitoring/checks/{check.pk}/",
        "consequences": [f"It is removed from the policy {policy.name} (a new version).",
                         f"{open_alerts} open alert(s) of it are resolved.",
                         f"{check.overrides.count()} override(s) of it are deleted."]})


check_delete.wk_model = Check

