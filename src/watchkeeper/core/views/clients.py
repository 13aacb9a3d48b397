"""Client, site and contact pages: lists, details, create/edit/delete.

Reads go through `scoped()` (another tenant's object is a 404); writes go through the
actions, which audit and emit. Views that take an object id name its model in `wk_model`.
"""

from __future__ import annotations

import csv
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .. import actions, selectors
from ..csvsafe import safe_cell
from ..forbidden import forbidden
from ..models import Client, Contact, Site
from ..permissions import has_capability, requires
from ..tenancy import scoped, visible_client_ids
from .client_forms import (
    WEEKDAYS,
    ChooseClientForm,
    ClientForm,
    ContactForm,
    DeleteForm,
    SiteForm,
)
from .form_errors import apply_model_errors
from .listing import PAGE_SIZES, page_window, paginate, resolve_sort, sort_columns

# (key, label, ORM field, numeric); the clients selector orders by the same keys.
CLIENT_COLUMNS = [(key, label, selectors.CLIENT_SORTS[key], key in ("sites", "contacts"))
                  for key, label in (("name", "Name"), ("status", "Status"),
                                     ("timezone", "Time zone"), ("sites", "Sites"),
                                     ("contacts", "Contacts"), ("created", "Created"))]
SITE_COLUMNS = [("name", "Site", "name", False), ("client", "Client", "client__name", False),
                ("address", "Address", None, False),
                ("contacts", "Contacts", "contact_count", True)]
CONTACT_COLUMNS = [("name", "Name", "name", False), ("client", "Client", "client__name", False),
                   ("title", "Title", "title", False), ("email", "Email", "email", False),
                   ("phone", "Phone", None, False)]
CLIENT_TABS = [("overview", "Overview"), ("sites", "Sites"), ("contacts", "Contacts"),
               ("activity", "Activity")]


# --- helpers --------------------------------------------------------------------------

def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def hours_display(business_hours: dict | None) -> list[tuple[str, str]]:
    hours = business_hours or {}
    rows = []
    for day, label in WEEKDAYS:
        intervals = hours.get(str(day)) or []
        text = ", ".join(f"{s}–{e}" for s, e in intervals) if intervals else "Closed"
        rows.append((label, text))
    return rows


def is_open(business_hours: dict | None, local_now) -> bool:
    hhmm = local_now.strftime("%H:%M")
    for start, end in (business_hours or {}).get(str(local_now.isoweekday()), []):
        if start <= hhmm < end:
            return True
    return False


def client_clock(client: Client, viewer, zone_name: str | None = None) -> dict:
    """The client's local time beside the viewer's, and whether the client is open now."""
    now = timezone.now()
    client_tz, viewer_tz = _zone(zone_name or client.timezone), _zone(viewer.timezone)
    client_now = now.astimezone(client_tz)
    return {
        "client_tz": str(client_tz), "client_now": client_now,
        "viewer_tz": str(viewer_tz), "viewer_now": now.astimezone(viewer_tz),
        "same_zone": client_now.utcoffset() == now.astimezone(viewer_tz).utcoffset(),
        "open_now": is_open(client.business_hours, client_now),
    }


def _client_crumbs(client: Client | None = None, *tail) -> list[tuple[str, str]]:
    crumbs = [("Clients", reverse("clients"))]
    if client is not None:
        crumbs.append((client.name, reverse("client_detail", args=[client.pk])))
    crumbs.extend(tail)
    return crumbs


def _visible_clients(user):
    return scoped(Client.objects.all(), user)


# --- clients --------------------------------------------------------------------------

def _client_list_context(request) -> tuple[dict, object]:
    params = selectors.parse_client_params(request.GET)
    scope = selectors.scope_client(request)
    base = selectors.clients_base(request.user, scope=scope, q=params.q)
    return {"params": params, "scope": scope, "base": base}, params


@requires("clients.view")
def client_list(request):
    ctx, params = _client_list_context(request)
    counts = selectors.client_status_counts(ctx["base"])
    rows = selectors.client_list(ctx["base"], params)
    page = paginate(request, rows, count=counts[params.status])
    _ordering, columns = resolve_sort(params.sort, CLIENT_COLUMNS, "name")
    filtered = bool(params.q) or params.status != "all"
    return render(request, "core/clients/list.html", {
        "page_obj": page, "page_numbers": page_window(page), "columns": columns,
        "params": params, "counts": counts, "scope": ctx["scope"],
        "page_sizes": PAGE_SIZES, "per_page": page.paginator.per_page,
        "filtered": filtered, "any_clients": counts["all"] > 0 or filtered or ctx["scope"],
        "chips": [("all", "All"), ("active", "Active"), ("inactive", "Inactive")],
        "no_access": visible_client_ids(request.user) == [],
    })


@requires("clients.view")
def client_export(request):
    """CSV of every client matching the current filter (all pages), same order as the list."""
    ctx, params = _client_list_context(request)
    rows = selectors.client_list(ctx["base"], params)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="clients-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(["name", "slug", "is_active", "timezone", "sites", "contacts",
                     "created_at", "notes"])
    for c in rows.iterator(chunk_size=500):
        writer.writerow([safe_cell(v) for v in (
            c.name, c.slug, "yes" if c.is_active else "no", c.timezone, c.site_count,
            c.contact_count, c.created_at.isoformat(), c.notes)])
    return response


@requires("clients.view")
def client_detail(request, pk: int):
    client = get_object_or_404(_visible_clients(request.user), pk=pk)
    tab = request.GET.get("tab", "overview")
    if tab not in dict(CLIENT_TABS):
        tab = "overview"
    sites = list(client.sites.order_by("name"))
    contacts = list(client.contacts.select_related("site").order_by("-is_primary", "name"))
    return render(request, "core/clients/detail.html", {
        "client": client, "tab": tab, "tabs": CLIENT_TABS,
        "tab_counts": {"sites": len(sites), "contacts": len(contacts)},
        "sites": sites, "contacts": contacts,
        "activity": selectors.client_activity(request.user, client) if tab == "activity" else [],
        "clock": client_clock(client, request.user),
        "hours": hours_display(client.business_hours),
        "crumbs": _client_crumbs(client),
    })


client_detail.wk_model = Client


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def client_create(request):
    if not selectors.can_add_clients(request.user):
        return forbidden(request, "Only roles that see every client can add clients.")
    form = ClientForm(request.POST or None, initial=ClientForm.initial_for(None),
                      networks_editable=has_capability(request.user, "clients.manage"))
    if request.method == "POST" and form.is_valid():
        try:
            client = actions.create_client(actor=request.user, **form.values())
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            messages.success(request, f"Client “{client.name}” created.")
            return redirect("client_detail", pk=client.pk)
    return render(request, "core/clients/client_form.html", {
        "form": form, "client": None,
        "crumbs": _client_crumbs(None, ("New client", "")),
    })


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def client_edit(request, pk: int):
    client = get_object_or_404(_visible_clients(request.user), pk=pk)
    form = ClientForm(request.POST or None, initial=ClientForm.initial_for(client),
                      networks_editable=has_capability(request.user, "clients.manage"))
    if request.method == "POST" and form.is_valid():
        try:
            actions.update_object(actor=request.user, obj=client, **form.values())
        except ValidationError as exc:
            client.refresh_from_db()
            apply_model_errors(form, exc)
        else:
            messages.success(request, f"Client “{client.name}” saved.")
            return redirect("client_detail", pk=client.pk)
    return render(request, "core/clients/client_form.html", {
        "form": form, "client": client,
        "crumbs": _client_crumbs(client, ("Edit", "")),
    })


client_edit.wk_model = Client


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def client_delete(request, pk: int):
    client = get_object_or_404(_visible_clients(request.user), pk=pk)
    if not selectors.can_add_clients(request.user):
        return forbidden(request, "Only roles that see every client can delete clients.")
    form = DeleteForm(request.POST or None, expected=client.name)
    blockers = {
        "sites": client.sites.count(), "contacts": client.contacts.count(),
        "users": client.portal_users.count(),
    }
    blocked = any(blockers.values())
    if request.method == "POST" and not blocked and form.is_valid():
        name = client.name
        try:
            actions.delete_object(actor=request.user, obj=client)
        except ProtectedError:
            messages.error(request, f"“{name}” still has related records; it was not deleted.")
            return redirect("client_detail", pk=pk)
        if request.session.get(selectors.SCOPE_SESSION_KEY) == pk:
            selectors.set_scope_client(request, None)
        messages.success(request, f"Client “{name}” deleted.")
        return redirect("clients")
    return render(request, "core/clients/confirm_delete.html", {
        "object": client, "kind": "client", "form": form, "typed": True,
        "blockers": blockers, "blocked": blocked,
        "cancel_url": reverse("client_detail", args=[client.pk]),
        "crumbs": _client_crumbs(client, ("Delete", "")),
    })


client_delete.wk_model = Client


# --- sites ----------------------------------------------------------------------------

@requires("clients.view")
def site_list(request):
    q = (request.GET.get("q") or "").strip()[:200]
    scope = selectors.scope_client(request)
    ordering, columns = sort_columns(request, SITE_COLUMNS, "client")
    page = paginate(request, selectors.site_list(request.user, scope=scope, q=q,
                                                 ordering=ordering))
    return render(request, "core/clients/site_list.html", {
        "page_obj": page, "page_numbers": page_window(page), "q": q, "scope": scope,
        "columns": columns, "sort": request.GET.get("sort", ""),
        "page_sizes": PAGE_SIZES, "per_page": page.paginator.per_page,
        "crumbs": [("Clients", reverse("clients")), ("Sites", "")],
    })


def _choose_client(request, kind: str, target: str):
    """'+ New site/contact' from outside a client: pick the client (the scope preselects)."""
    clients = _visible_clients(request.user).filter(is_active=True).order_by("name")
    scope = selectors.scope_client(request)
    if "client" not in request.GET and scope is not None:
        return redirect(target, pk=scope.pk)
    form = ChooseClientForm(request.GET if "client" in request.GET else None, clients=clients)
    if form.is_bound and form.is_valid():
        return redirect(target, pk=form.cleaned_data["client"].pk)
    return render(request, "core/clients/choose_client.html", {
        "form": form, "kind": kind,
        "crumbs": [("Clients", reverse("clients")), (f"New {kind}", "")],
    })


@requires("clients.change")
def site_create(request):
    return _choose_client(request, "site", "client_site_create")


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def client_site_create(request, pk: int):
    client = get_object_or_404(_visible_clients(request.user), pk=pk)
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            site = actions.create_site(actor=request.user, client=client, **form.values())
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            messages.success(request, f"Site “{site.name}” added to {client.name}.")
            return redirect("site_detail", pk=site.pk)
    return render(request, "core/clients/site_form.html", {
        "form": form, "client": client, "site": None,
        "crumbs": _client_crumbs(client, ("New site", "")),
    })


client_site_create.wk_model = Client


def _visible_site(request, pk: int) -> Site:
    return get_object_or_404(scoped(Site.objects.select_related("client"), request.user), pk=pk)


@requires("clients.view")
def site_detail(request, pk: int):
    site = _visible_site(request, pk)
    contacts = list(site.contacts.order_by("-is_primary", "name"))
    return render(request, "core/clients/site_detail.html", {
        "site": site, "client": site.client, "contacts": contacts,
        "clock": client_clock(site.client, request.user, site.timezone or None),
        "history": selectors.object_history(request.user, site),
        "crumbs": _client_crumbs(site.client, (site.name, "")),
    })


site_detail.wk_model = Site


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def site_edit(request, pk: int):
    site = _visible_site(request, pk)
    form = SiteForm(request.POST or None,
                    initial={k: getattr(site, k) for k in SiteForm.FIELDS})
    if request.method == "POST" and form.is_valid():
        try:
            actions.update_object(actor=request.user, obj=site, **form.values())
        except ValidationError as exc:
            site.refresh_from_db()
            apply_model_errors(form, exc)
        else:
            messages.success(request, f"Site “{site.name}” saved.")
            return redirect("site_detail", pk=site.pk)
    return render(request, "core/clients/site_form.html", {
        "form": form, "client": site.client, "site": site,
        "crumbs": _client_crumbs(site.client, (site.name, reverse("site_detail", args=[pk])),
                                 ("Edit", "")),
    })


site_edit.wk_model = Site


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def site_delete(request, pk: int):
    site = _visible_site(request, pk)
    return _delete_child(request, site, kind="site", tab="sites",
                         note=f"Contacts at this site stay with {site.client.name} "
                              "without a site.")


site_delete.wk_model = Site


# --- contacts -------------------------------------------------------------------------

@requires("clients.view")
def contact_list(request):
    q = (request.GET.get("q") or "").strip()[:200]
    scope = selectors.scope_client(request)
    ordering, columns = sort_columns(request, CONTACT_COLUMNS, "client")
    page = paginate(request, selectors.contact_list(request.user, scope=scope, q=q,
                                                    ordering=ordering))
    return render(request, "core/clients/contact_list.html", {
        "page_obj": page, "page_numbers": page_window(page), "q": q, "scope": scope,
        "columns": columns, "sort": request.GET.get("sort", ""),
        "page_sizes": PAGE_SIZES, "per_page": page.paginator.per_page,
        "crumbs": [("Clients", reverse("clients")), ("Contacts", "")],
    })


@requires("clients.change")
def contact_create(request):
    return _choose_client(request, "contact", "client_contact_create")


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def client_contact_create(request, pk: int):
    client = get_object_or_404(_visible_clients(request.user), pk=pk)
    form = ContactForm(request.POST or None, sites=client.sites.order_by("name"),
                       user=request.user, client=client,
                       initial={"site": request.GET.get("site")})
    if request.method == "POST" and form.is_valid():
        try:
            contact = actions.create_contact(actor=request.user, client=client, **form.values())
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            messages.success(request, f"Contact “{contact.name}” added to {client.name}.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "core/clients/contact_form.html", {
        "form": form, "client": client, "contact": None,
        "crumbs": _client_crumbs(client, ("New contact", "")),
    })


client_contact_create.wk_model = Client


def _visible_contact(request, pk: int) -> Contact:
    return get_object_or_404(
        scoped(Contact.objects.select_related("client", "site"), request.user), pk=pk)


@requires("clients.view")
def contact_detail(request, pk: int):
    contact = _visible_contact(request, pk)
    return render(request, "core/clients/contact_detail.html", {
        "contact": contact, "client": contact.client,
        "history": selectors.object_history(request.user, contact),
        "crumbs": _client_crumbs(contact.client, (contact.name, "")),
    })


contact_detail.wk_model = Contact


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def contact_edit(request, pk: int):
    contact = _visible_contact(request, pk)
    client = contact.client
    form = ContactForm(request.POST or None, sites=client.sites.order_by("name"),
                       user=request.user, client=client,
                       initial={k: getattr(contact, k) for k in ContactForm.FIELDS})
    if request.method == "POST" and form.is_valid():
        try:
            actions.update_object(actor=request.user, obj=contact, **form.values())
        except ValidationError as exc:
            contact.refresh_from_db()
            apply_model_errors(form, exc)
        else:
            messages.success(request, f"Contact “{contact.name}” saved.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "core/clients/contact_form.html", {
        "form": form, "client": client, "contact": contact,
        "crumbs": _client_crumbs(client, (contact.name, reverse("contact_detail", args=[pk])),
                                 ("Edit", "")),
    })


contact_edit.wk_model = Contact


@requires("clients.change")
@require_http_methods(["GET", "POST"])
def contact_delete(request, pk: int):
    return _delete_child(request, _visible_contact(request, pk), kind="contact",
                         tab="contacts")


def _delete_child(request, obj: Site | Contact, *, kind: str, tab: str, note: str = ""):
    """Confirm, then delete a site or contact, back on its client's tab."""
    client = obj.client
    detail_url = reverse(f"{kind}_detail", args=[obj.pk])
    if request.method == "POST":
        name = obj.name
        actions.delete_object(actor=request.user, obj=obj)
        messages.success(request, f"{kind.capitalize()} “{name}” deleted from {client.name}.")
        return redirect(f"{reverse('client_detail', args=[client.pk])}?tab={tab}")
    context = {"object": obj, "kind": kind, "typed": False, "cancel_url": detail_url,
               "crumbs": _client_crumbs(client, (obj.name, detail_url), ("Delete", ""))}
    if note:
        context["note"] = note
    return render(request, "core/clients/confirm_delete.html", context)


contact_delete.wk_model = Contact
