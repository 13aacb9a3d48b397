"""Pages of the agents app: enrollment tokens, agents (quarantine and list), the kill switch
and quarantined payloads (the script library: scripts/views.py). Reads through scoped();
writes through actions.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from . import actions
from .choices import AgentStatus, Connectivity
from .forms import TokenForm
from .installers import dist
from .installers.scripts import base_url, one_liners, plain_http
from .models import Agent, EnrollmentToken, QuarantinedPayload


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
