"""Shell pages: the dashboard, the client portal landing page, global search, client scope."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from .. import selectors
from ..choices import Role
from ..forbidden import forbidden
from ..models import Client
from ..permissions import AUTHENTICATED, has_capability, requires
from ..tenancy import scoped
from .clients import client_clock

TYPEAHEAD_LIMIT = 5


@requires(AUTHENTICATED)
def dashboard(request):
    """'My work'. Declared for any signed-in user so that a client user who lands here
    (e.g. after sign-in) is sent to the portal instead of a 403."""
    user = request.user
    if user.role == Role.CLIENT_USER:
        return redirect("portal")
    if not has_capability(user, "dashboard.view"):
        return forbidden(request)
    from watchkeeper.core import home

    stats = selectors.dashboard_stats(user)
    return render(request, "core/ui/dashboard.html", {
        "stats": stats,
        "my_clients": selectors.assigned_clients(user),
        "fresh_install": stats.clients_total == 0,
        **home.panels(user),
    })


@requires("dashboard.view")
def activity(request):
    """Recent changes the user may see (the audit feed, moved off the home page)."""
    return render(request, "core/ui/activity.html", {
        "activity": selectors.recent_activity(request.user, limit=100)})


@requires("portal.view")
def portal(request):
    client = request.user.client
    context = {"client": client}
    if client is not None:
        context.update(
            sites=list(scoped(client.sites.all(), request.user).order_by("name")),
            contacts=list(scoped(client.contacts.all(), request.user).order_by("name")[:20]),
            clock=client_clock(client, request.user),
            **_portal_work(request.user),
        )
    return render(request, "core/ui/portal.html", context)


def _portal_work(user) -> dict:
    """The client's open requests and their devices' health, as the helpdesk provides them
    (core.hooks `core.portal_work`; core imports no app)."""
    from watchkeeper.core import hooks

    work = hooks.first("core.portal_work")
    return work(user) if work else {"open_tickets": [], "open_count": 0, "health": None}


@requires("clients.view")
def search(request):
    query = (request.GET.get("q") or "").strip()
    if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        if len(query) < selectors.SEARCH_MIN_LENGTH:
            return HttpResponse("")  # an empty body empties (and so hides) the pop-over
        results = selectors.search(request.user, query, limit=TYPEAHEAD_LIMIT)
        return render(request, "core/ui/_search_typeahead.html", {"results": results})
    results = selectors.search(request.user, query)
    return render(request, "core/ui/search.html", {
        "results": results, "search_query": query, "limit": 50,
    })


def _safe_next(request, fallback: str = "clients") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    from django.urls import reverse

    return reverse(fallback)


@requires("clients.view")
def scope(request):
    """Choose (POST client=<id>) or clear (POST client=) the client that narrows lists.

    A session preference, not data: nothing is audited. GET shows the chooser (full page,
    or the top bar's drop-down panel when asked by htmx).
    """
    if request.method == "POST":
        client_id = request.POST.get("client") or ""
        if client_id:
            client = None
            if client_id.isdigit():
                client = scoped(Client.objects.all(), request.user).filter(pk=client_id).first()
            if client is None:
                messages.error(request, "That client does not exist or is not visible to you.")
            else:
                selectors.set_scope_client(request, client)
                messages.info(request, f"Lists now show only {client.name}. Search still "
                                       "covers every client.")
        else:
            selectors.set_scope_client(request, None)
            messages.info(request, "Lists show every client again.")
        return redirect(_safe_next(request))
    clients = list(scoped(Client.objects.filter(is_active=True), request.user)
                   .order_by("name").only("pk", "name"))
    template = ("core/ui/_scope_panel.html" if request.headers.get("HX-Request")
                else "core/ui/scope.html")
    return render(request, template, {
        "clients": clients,
        "current": selectors.scope_client(request),
        "next": request.GET.get("next") or request.headers.get("HX-Current-URL", ""),
    })
