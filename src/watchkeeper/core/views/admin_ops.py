"""Admin pages for operations: the audit log, the event outbox and outgoing webhooks.

Every read goes through `scoped()`, so a technician sees only rows of assigned clients and
rows without a client (MSP-wide) only reach roles that see every client. Writes call actions.
"""

from __future__ import annotations

import datetime
import json
import secrets
import zoneinfo

from django import forms
from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from .. import actions, catalogue
from ..choices import AuditAction, DeliveryStatus
from ..converters import parse_id
from ..models import (
    AuditEntry,
    Client,
    Event,
    EventDelivery,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from ..permissions import has_capability, requires
from ..tenancy import scoped, visible_client_ids
from .listing import PAGE_SIZES, page_size, page_window, paginate

# --- helpers ------------------------------------------------------------------------------

def _page(request, queryset) -> dict:
    page = paginate(request, queryset)
    return {"page_obj": page, "page_numbers": page_window(page), "page_sizes": PAGE_SIZES,
            "per_page": page_size(request)}


def _viewer_zone(user) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _parse_day(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return fallback


def _scoped_clients(user):
    return scoped(Client.objects.only("id", "name"), user).order_by("name")


# --- audit log ----------------------------------------------------------------------------

@requires("audit.view")
def audit_log(request):
    """The audit log, filtered in the URL and paged on the server; read-only by design."""
    user = request.user
    entries = scoped(AuditEntry.objects.all(), user).select_related("client")
    f = {key: request.GET.get(key, "").strip() for key in
         ("actor", "action", "object_type", "object_id", "client", "from", "to", "q")}

    if parse_id(f["actor"]) is not None:
        entries = entries.filter(actor_id=parse_id(f["actor"]))
    elif f["actor"] == "system":
        entries = entries.filter(actor__isnull=True)
    if f["action"] in AuditAction.values:
        entries = entries.filter(action=f["action"])
    if f["object_type"]:
        entries = entries.filter(object_type=f["object_type"])
    if f["object_id"]:
        entries = entries.filter(object_id=f["object_id"])
    if parse_id(f["client"]) is not None:
        entries = entries.filter(client_id=parse_id(f["client"]))
    if f["client"] == "none":
        entries = entries.filter(client__isnull=True)
    # Dates are days in the viewer's zone: "to 2026-03-01" includes the whole of that day.
    zone = _viewer_zone(user)
    day_from, day_to = _parse_day(f["from"]), _parse_day(f["to"])
    if day_from:
        entries = entries.filter(at__gte=datetime.datetime.combine(day_from, datetime.time(),
                                                                   tzinfo=zone))
    if day_to:
        end = datetime.datetime.combine(day_to + datetime.timedelta(days=1), datetime.time(),
                                        tzinfo=zone)
        entries = entries.filter(at__lt=end)
    if f["q"]:
        entries = entries.filter(Q(object_repr__icontains=f["q"]) | Q(object_id=f["q"])
                                 | Q(actor_label__icontains=f["q"]))

    visible = scoped(AuditEntry.objects.all(), user)
    context = {
        **_page(request, entries),
        "filters": f,
        "filtered": any(f.values()),
        "actions": AuditAction.choices,
        "object_types": visible.order_by("object_type").values_list("object_type", flat=True)
        .distinct(),
        "actors": User.objects.filter(
            id__in=visible.filter(actor__isnull=False).values("actor_id")
        ).only("id", "email", "name").order_by("email"),
        "clients": _scoped_clients(user),
        "show_no_client": visible_client_ids(user) is None,
    }
    return render(request, "core/ops/audit_log.html", context)


@requires("audit.view")
def audit_entry(request, pk: int):
    entry = get_object_or_404(
        scoped(AuditEntry.objects.select_related("client", "actor"), request.user), pk=pk
    )
    rows = [{"field": name, "before": pair[0] if isinstance(pair, list | tuple) else None,
             "after": pair[1] if isinstance(pair, list | tuple) and len(pair) > 1 else pair}
            for name, pair in sorted((entry.changes or {}).items())]
    return render(request, "core/ops/audit_entry.html", {"entry": entry, "rows": rows})


audit_entry.wk_model = AuditEntry


# --- event outbox -------------------------------------------------------------------------

def _attach_endpoints(deliveries, user) -> None:
    """Give each `webhook:<id>` delivery its endpoint (one query) so the page can name it."""
    ids = {int(d.handler.split(":", 1)[1]) for d in deliveries
           if d.handler.startswith("webhook:") and d.handler.split(":", 1)[1].isdigit()}
    found = {}
    if ids:
        found = {f"webhook:{ep.pk}": ep for ep in
                 scoped(WebhookEndpoint.objects.filter(pk__in=ids).only("id", "name",
                                                                        "client_id"), user)}
    for d in deliveries:
        d.endpoint = found.get(d.handler)


@requires("events.view")
def events(request):
    """Recent outbox events with their deliveries; `?status=dead` lists the dead letters."""
    user = request.user
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "").strip()
    deliveries = scoped(EventDelivery.objects.all(), user)
    counts = dict(deliveries.values_list("status").annotate(n=Count("id")).order_by())
    event_qs = scoped(Event.objects.select_related("client"), user)
    delivery_qs = EventDelivery.objects.order_by("handler")
    if status in DeliveryStatus.values:
        event_qs = event_qs.filter(deliveries__status=status).distinct()
        delivery_qs = delivery_qs.filter(status=status)
    if kind:
        event_qs = event_qs.filter(kind=kind)
    event_qs = event_qs.order_by("-created_at").prefetch_related(
        Prefetch("deliveries", queryset=delivery_qs)
    )
    paging = _page(request, event_qs)
    _attach_endpoints([d for ev in paging["page_obj"].object_list for d in ev.deliveries.all()],
                      user)
    tabs = [("", "All", sum(counts.values()))] + [
        (value, label, counts.get(value, 0)) for value, label in
        ((DeliveryStatus.DEAD, "Dead letters"), (DeliveryStatus.PENDING, "Pending"),
         (DeliveryStatus.DONE, "Delivered"))
    ]
    return render(request, "core/ops/events.html", {
        **paging, "status": status, "kind": kind, "tabs": tabs,
        "can_replay": has_capability(user, "events.manage"),
    })


@requires("events.view")
def event_detail(request, pk):
    event = get_object_or_404(scoped(Event.objects.select_related("client"), request.user),
                              pk=pk)
    deliveries = list(event.deliveries.order_by("handler"))
    _attach_endpoints(deliveries, request.user)
    return render(request, "core/ops/event_detail.html", {
        "event": event, "deliveries": deliveries,
        "payload_json": json.dumps(event.payload, indent=2, sort_keys=True, default=str),
        "can_replay": has_capability(request.user, "events.manage"),
    })


event_detail.wk_model = Event


@requires("events.manage")
@require_POST
def event_replay(request, pk: int):
    delivery = get_object_or_404(
        scoped(EventDelivery.objects.select_related("event"), request.user), pk=pk
    )
    fallback = reverse("event_detail", args=[delivery.event_id])
    if delivery.status != DeliveryStatus.DEAD:
        messages.warning(request, f"The delivery to {delivery.handler} is not a dead letter "
                                  f"(it is {delivery.get_status_display().lower()}); "
                                  "nothing was replayed.")
        return redirect(_safe_next(request, fallback))
    delivery = actions.replay_delivery(actor=request.user, delivery=delivery)
    messages.success(request, f"Replayed {delivery.event.kind} to {delivery.handler}: "
                              "queued for delivery now.")
    return redirect(_safe_next(request, fallback))


event_replay.wk_model = EventDelivery


# --- webhooks -----------------------------------------------------------------------------

def known_event_kinds() -> list[str]:
    """What a webhook may ask for: every broadcast kind of the event catalogue."""
    return catalogue.kinds(subscribable=True)


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=200)
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https",
                         help_text="Receives a POST with a JSON body, signed with HMAC-SHA256.")
    client = forms.ModelChoiceField(queryset=Client.objects.none(), required=False,
                                    empty_label="All clients")
    event_kinds = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                            label="Event kinds")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["client"].queryset = _scoped_clients(user)
        # Kinds an older endpoint asked for that are no longer declared stay visible (under
        # "other"): the form refuses them until they are unticked.
        current = self.initial.get("event_kinds") or []
        self.fields["event_kinds"].choices = [(k, k) for k in known_event_kinds()] + [
            (k, k) for k in current if not catalogue.is_declared(k)]
        self.fields["event_kinds"].help_text = ("None chosen: every event is sent. "
                                                "Each kind is described in docs/events.md.")

    def kind_groups(self):
        """(app, [(checkbox, one-line meaning)], open): the checkboxes by app; a group with
        a ticked kind starts open."""
        boxes = {cb.data["value"]: cb for cb in self["event_kinds"]}
        groups = [(app, [(boxes[d.KIND], d.MEANING) for d in defs if d.KIND in boxes])
                  for app, defs in catalogue.kinds_by_app()]
        other = [(cb, "No longer an event kind: untick it to save.")
                 for k, cb in boxes.items() if not catalogue.is_declared(k)]
        groups += [("other", other)] if other else []
        return [(app, items, any(cb.data["selected"] for cb, _ in items))
                for app, items in groups]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// address.")
        return url

    def clean_client(self):
        client = self.cleaned_data.get("client")
        if client is None and visible_client_ids(self.user) is not None:
            raise forms.ValidationError("Choose one of your clients.")
        return client

    def clean_event_kinds(self):
        kinds = self.cleaned_data.get("event_kinds") or []
        unknown = [k for k in kinds if k not in known_event_kinds()]
        if unknown:
            raise forms.ValidationError(f"Not an event kind (untick it): {', '.join(unknown)}")
        return kinds

    def kinds(self) -> list[str]:
        return sorted(set(self.cleaned_data.get("event_kinds") or []))


@requires("webhooks.view")
def webhooks(request):
    endpoints = scoped(WebhookEndpoint.objects.select_related("client"), request.user)
    q = request.GET.get("q", "").strip()
    if q:
        endpoints = endpoints.filter(Q(name__icontains=q) | Q(url__icontains=q))
    endpoints = endpoints.annotate(
        failures=Count("deliveries", filter=Q(deliveries__success=False))
    ).order_by("name")
    return render(request, "core/ops/webhooks.html", {
        **_page(request, endpoints), "q": q,
        "can_manage": has_capability(request.user, "webhooks.manage"),
    })


@requires("webhooks.manage")
@require_http_methods(["GET", "POST"])
def webhook_create(request):
    form = WebhookForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        secret = secrets.token_urlsafe(32)
        endpoint = actions.create_webhook(
            actor=request.user, name=form.cleaned_data["name"], url=form.cleaned_data["url"],
            client=form.cleaned_data["client"], event_kinds=form.kinds(), secret=secret,
            is_active=form.cleaned_data["is_active"],
        )
        # Rendered in the POST answer itself, never stored in clear: this is the only time
        # anyone sees the secret.
        response = render(request, "core/ops/webhook_created.html",
                          {"endpoint": endpoint, "secret": secret})
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "core/ops/webhook_form.html", {"form": form, "endpoint": None})


def _endpoint(request, pk: int) -> WebhookEndpoint:
    return get_object_or_404(scoped(WebhookEndpoint.objects.select_related("client"),
                                    request.user), pk=pk)


@requires("webhooks.view")
def webhook_detail(request, pk: int):
    endpoint = _endpoint(request, pk)
    log = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event")
    return render(request, "core/ops/webhook_detail.html", {
        **_page(request, log), "endpoint": endpoint,
        "can_manage": has_capability(request.user, "webhooks.manage"),
    })


webhook_detail.wk_model = WebhookEndpoint


@requires("webhooks.manage")
@require_http_methods(["GET", "POST"])
def webhook_edit(request, pk: int):
    endpoint = _endpoint(request, pk)
    initial = {"name": endpoint.name, "url": endpoint.url, "client": endpoint.client,
               "event_kinds": list(endpoint.event_kinds), "is_active": endpoint.is_active}
    form = WebhookForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        actions.update_object(
            actor=request.user, obj=endpoint, name=form.cleaned_data["name"],
            url=form.cleaned_data["url"], client=form.cleaned_data["client"],
            event_kinds=form.kinds(), is_active=form.cleaned_data["is_active"],
        )
        messages.success(request, f"Webhook “{endpoint.name}” saved.")
        return redirect("webhook_detail", pk=endpoint.pk)
    return render(request, "core/ops/webhook_form.html", {"form": form, "endpoint": endpoint})


webhook_edit.wk_model = WebhookEndpoint


@requires("webhooks.manage")
@require_POST
def webhook_toggle(request, pk: int):
    endpoint = _endpoint(request, pk)
    actions.update_object(actor=request.user, obj=endpoint, is_active=not endpoint.is_active)
    state = "enabled" if endpoint.is_active else "disabled"
    messages.success(request, f"Webhook “{endpoint.name}” {state}.")
    return redirect("webhook_detail", pk=endpoint.pk)


webhook_toggle.wk_model = WebhookEndpoint


@requires("webhooks.manage")
@require_POST
def webhook_test(request, pk: int):
    endpoint = _endpoint(request, pk)
    if not endpoint.is_active:
        messages.warning(request, f"Webhook “{endpoint.name}” is disabled; enable it to send "
                                  "a test event.")
        return redirect("webhook_detail", pk=endpoint.pk)
    actions.send_webhook_test(actor=request.user, endpoint=endpoint)
    messages.success(request, f"Test event queued for “{endpoint.name}”; its delivery appears "
                              "in the log below once sent.")
    return redirect("webhook_detail", pk=endpoint.pk)


webhook_test.wk_model = WebhookEndpoint


@requires("webhooks.manage")
@require_http_methods(["GET", "POST"])
def webhook_delete(request, pk: int):
    endpoint = _endpoint(request, pk)
    if request.method == "POST":
        name = endpoint.name
        actions.delete_object(actor=request.user, obj=endpoint)
        messages.success(request, f"Webhook “{name}” deleted.")
        return redirect("webhooks")
    return render(request, "core/ops/webhook_delete.html", {
        "endpoint": endpoint, "deliveries": endpoint.deliveries.count(),
    })


webhook_delete.wk_model = WebhookEndpoint
