"""Pages of the script library: scripts, their versions, running one and the run's page.
Reads through scoped(); writes through agents/actions.py."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from .. import actions
from ..choices import RunStatus
from ..models import Command
from ..views import _page
from .forms import RunForm, ScriptForm
from .models import Script, ScriptRun


@requires("scripts.view")
def script_list(request):
    scripts = Script.objects.all()
    q = request.GET.get("q", "").strip()
    if q:
        scripts = scripts.filter(Q(name__icontains=q) | Q(description__icontains=q))
    runs = scoped(ScriptRun.objects.select_related("script_version__script", "requested_by"),
                  request.user)[:20]
    return render(request, "agents/script_list.html", {
        "page_obj": _page(request, scripts), "q": q, "runs": runs,
        "can_change": has_capability(request.user, "scripts.change")})


@requires("scripts.change")
@require_http_methods(["GET", "POST"])
def script_create(request):
    form = ScriptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            script = actions.create_script(
                actor=request.user, name=data["name"], language=data["language"],
                body=data["body"], description=data["description"],
                parameters=data["parameters"], timeout=data["timeout"])
        except (actions.ActionError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Script “{script.name}” saved.")
            return redirect("script_detail", pk=script.pk)
    return render(request, "agents/script_form.html", {"form": form, "script": None})


@requires("scripts.view")
@require_http_methods(["GET", "POST"])
def script_detail(request, pk: int):
    script = get_object_or_404(Script, pk=pk)
    version = script.current
    can_change = has_capability(request.user, "scripts.change")
    can_run = has_capability(request.user, "scripts.run")
    edit = ScriptForm(initial={
        "name": script.name, "description": script.description, "language": version.language,
        "body": version.body, "timeout": version.timeout,
        "parameters": json.dumps(version.parameters) if version.parameters else ""})
    run_form = RunForm(request.POST or None, user=request.user, parameters=version.parameters,
                       initial={"target_kind": "device", "script_version": version.pk,
                                "device": request.GET.get("device") or None})
    if request.method == "POST":
        if not can_run:
            messages.error(request, "You may not run scripts.")
            return redirect("script_detail", pk=pk)
        if run_form.is_valid():
            seen = script.versions.filter(pk=run_form.cleaned_data["script_version"]).first()
            try:
                if seen is None:
                    raise actions.ActionError("Unknown script version.")
                run = actions.run_script(
                    actor=request.user, version=seen,
                    target_kind=run_form.cleaned_data["target_kind"],
                    target=run_form.target(), parameters=run_form.parameters())
            except actions.ActionError as exc:
                run_form.add_error(None, str(exc))
            else:
                if run.needs_approval:
                    messages.warning(request, f"{run.agent_count} endpoints: this job waits "
                                     "for a second person's approval.")
                else:
                    messages.success(request, f"Queued on {run.agent_count} endpoint(s).")
                return redirect("script_run", pk=run.pk)
    runs = scoped(ScriptRun.objects.filter(script_version__script=script).select_related(
        "script_version", "requested_by"), request.user)[:20]
    return render(request, "agents/script_detail.html", {
        "script": script, "version": version, "versions": script.versions.all()[:20],
        "edit": edit, "run_form": run_form, "runs": runs, "can_change": can_change,
        "can_run": can_run})


@requires("scripts.change")
@require_POST
def script_edit(request, pk: int):
    script = get_object_or_404(Script, pk=pk)
    form = ScriptForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            version = actions.update_script(
                actor=request.user, script=script, body=data["body"],
                language=data["language"], parameters=data["parameters"],
                description=data["description"], timeout=data["timeout"])
        except (actions.ActionError, ValueError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Saved as version {version.version}.")
    else:
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect("script_detail", pk=pk)


@requires("scripts.view")
def script_run(request, pk: int):
    run = get_object_or_404(scoped(ScriptRun.objects.select_related(
        "script_version__script", "requested_by", "approved_by"), request.user), pk=pk)
    commands = Command.objects.filter(run=run).select_related("agent__device").defer(
        "payload", "signature", "body").order_by("agent__hostname", "id")
    return render(request, "agents/script_run.html", {
        "run": run, "parameters": actions.masked_parameters(run.parameters),
        "page_obj": _page(request, commands, 100),
        "counts": dict(commands.values_list("status").annotate(n=Count("id")).order_by()),
        "can_approve": (has_capability(request.user, "scripts.approve")
                        and run.status == RunStatus.AWAITING_APPROVAL
                        and run.requested_by_id != request.user.pk),
        "can_cancel": has_capability(request.user, "scripts.run") and run.status in (
            RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)})


@requires("scripts.run")
@require_POST
def script_run_action(request, pk: int, verb: str):
    run = get_object_or_404(scoped(ScriptRun.objects.all(), request.user), pk=pk)
    try:
        if verb == "approve":
            if not has_capability(request.user, "scripts.approve"):
                raise actions.ActionError("Approving large jobs needs the scripts.approve right.")
            actions.approve_run(actor=request.user, run=run)
            messages.success(request, "Approved: the commands go to the signer.")
        elif verb == "cancel":
            n = actions.cancel_run(actor=request.user, run=run)
            messages.success(request, f"{n} command(s) cancelled.")
        else:
            raise actions.ActionError("Unknown action.")
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    return redirect("script_run", pk=pk)


script_detail.wk_model = Script
script_edit.wk_model = Script
script_run.wk_model = ScriptRun
script_run_action.wk_model = ScriptRun
