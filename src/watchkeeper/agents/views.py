"""Pages of the agents app: enrollment tokens, agents (quarantine and list), the script
library with runs, and quarantined payloads. Reads through scoped(); writes through actions.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from . import actions
from .choices import AgentStatus, Connectivity, RunStatus
from .forms import RunForm, ScriptForm, TokenForm
from .installers import dist
from .installers.scripts import base_url, one_liners, plain_http
from .models import Agent, Command, EnrollmentToken, QuarantinedPayload, Script, ScriptRun


def _page(request, queryset, per: int = 50):
    return Paginator(queryset, per).get_page(request.GET.get("page"))


install_command = actions.install_command


# --- Enrollment ------------------------------------------------------------------------------

@requires("agents.view")
@require_http_methods(["GET", "POST"])
def enrollment(request):
    can_manage = has_capability(request.user, "agents.manage")
    form = TokenForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if not can_manage:
            messages.error(request, "You may not create enrollment tokens.")
            return redirect("agents_enrollment")
        if form.is_valid():
            data = form.cleaned_data
            try:
                token, raw = actions.create_enrollment_token(
                    actor=request.user, client=data["site"].client, site=data["site"],
                    hours=data["hours"], auto_approve=data["auto_approve"],
                    max_uses=data["max_uses"], note=data["note"])
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                # Shown in this answer only: the token is stored as a hash.
                response = render(request, "agents/token_created.html", {
                    "token": token, "raw": raw, "command": install_command(raw),
                    "installers": one_liners(raw), "packages": dist.load(),
                    "server": base_url(), "plain_http": plain_http(),
                    "signer": actions.active_signer_key()})
                response["Cache-Control"] = "no-store"
                return response
    tokens = scoped(EnrollmentToken.objects.select_related("client", "site"), request.user)
    return render(request, "agents/enrollment.html", {
        "form": form, "page_obj": _page(request, tokens), "can_manage": can_manage})


@requires("agents.manage")
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(scoped(EnrollmentToken.objects.all(), request.user), pk=pk)
    actions.revoke_enrollment_token(actor=request.user, token=token)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("agents_enrollment")


token_revoke.wk_model = EnrollmentToken


# --- Agents ----------------------------------------------------------------------------------

@requires("agents.view")
def agent_list(request):
    agents = scoped(Agent.objects.select_related("client", "site", "device").defer(
        "inventory_hashes", "facts"), request.user)
    counts = dict(agents.values_list("status").annotate(n=Count("id")).order_by())
    pending = list(agents.filter(status=AgentStatus.PENDING).order_by("created_at")[:200])
    status = request.GET.get("status", "")
    listed = agents.exclude(status=AgentStatus.PENDING)
    if status in AgentStatus.values:
        listed = agents.filter(status=status)
    connectivity = request.GET.get("connectivity", "")
    if connectivity in Connectivity.values:
        listed = listed.filter(connectivity=connectivity)
    q = request.GET.get("q", "").strip()
    if q:
        listed = listed.filter(Q(hostname__icontains=q) | Q(client__name__icontains=q)
                               | Q(last_ip__startswith=q))
    return render(request, "agents/agent_list.html", {
        "pending": pending, "page_obj": _page(request, listed.order_by("hostname", "id")),
        "counts": counts, "status": status, "connectivity": connectivity, "q": q,
        "can_manage": has_capability(request.user, "agents.manage"),
        "can_kill": has_capability(request.user, "scripts.approve"),
        "statuses": AgentStatus.choices, "connectivities": Connectivity.choices,
    })


@requires("agents.view")
def agent_detail(request, pk: int):
    agent = get_object_or_404(scoped(Agent.objects.select_related(
        "client", "site", "device", "approved_by", "enrollment_token"), request.user), pk=pk)
    commands = agent.commands.select_related("run__script_version__script").defer(
        "payload", "signature")[:20]
    return render(request, "agents/agent_detail.html", {
        "agent": agent, "commands": commands,
        "can_manage": has_capability(request.user, "agents.manage")})


agent_detail.wk_model = Agent


_TRANSITIONS = {
    "approve": (actions.approve_agent, "approved"),
    "reject": (actions.reject_agent, "rejected"),
    "revoke": (actions.revoke_agent, "revoked"),
}


@requires("agents.manage")
@require_POST
def agent_action(request, pk: int, verb: str):
    agent = get_object_or_404(scoped(Agent.objects.all(), request.user), pk=pk)
    if verb == "delete":
        actions.delete_agent(actor=request.user, agent=agent)
        messages.success(request, f"Agent {agent} deleted; its key no longer works.")
        return redirect("agents")
    if verb not in _TRANSITIONS:
        messages.error(request, "Unknown action.")
        return redirect("agents")
    func, word = _TRANSITIONS[verb]
    try:
        func(actor=request.user, agent=agent)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Agent {agent} {word}.")
    if request.POST.get("next") == "detail":
        return redirect("agent_detail", pk=agent.pk)
    return redirect("agents")


agent_action.wk_model = Agent


@requires("scripts.approve")
@require_POST
def kill_switch(request):
    if request.POST.get("confirm") != "CANCEL ALL":
        messages.error(request, "Type CANCEL ALL to pull the kill switch.")
        return redirect("agents")
    cancelled = actions.kill_switch(actor=request.user)
    messages.success(request, f"Kill switch: {cancelled} pending command(s) cancelled.")
    return redirect("agents")


@requires("agents.manage")
def quarantine(request):
    rows = scoped(QuarantinedPayload.objects.select_related("agent"), request.user)
    return render(request, "agents/quarantine.html", {"page_obj": _page(request, rows)})


# --- Scripts ---------------------------------------------------------------------------------

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


script_detail.wk_model = Script


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


script_edit.wk_model = Script


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


script_run.wk_model = ScriptRun


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


script_run_action.wk_model = ScriptRun
