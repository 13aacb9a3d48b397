"""Pages of the monitoring app: the alert console (filters, bulk acknowledge / snooze /
resolve of checked rows or of every alert matching the filter), an alert's page, the
per-client health overview, the policy list and editor with the what-if result, the
maintenance calendar, and a device's checks. Reads through scoped(); writes through
actions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from watchkeeper.core.converters import parse_id
from watchkeeper.core.models import Client
from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped
from watchkeeper.core.views.listing import page_window
from watchkeeper.inventory.selectors import all_devices

from . import actions, bulk, maintenance, policies
from .choices import OPEN_STATUSES, SERVER_KINDS, AlertStatus, State
from .models import Alert, Check, CheckState, MaintenanceWindow

SEVERITY_ORDER = [State.CRITICAL, State.WARNING, State.UNKNOWN]


# --- Alert console ---------------------------------------------------------------------------

@requires("monitoring.view")
def alert_console(request):
    flt = bulk.AlertFilter.from_console(request.GET)
    visible = scoped(Alert.objects.select_related("client", "device"), request.user)
    # The chips count every state under the other filters.
    counts = dict(replace(flt, status="any").apply(visible).values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    qs = flt.apply(visible)
    page = Paginator(qs.order_by(*bulk.ORDER), 100).get_page(request.GET.get("page"))
    clients = scoped(Client.objects.order_by("name"), request.user).values_list("id", "name")
    return render(request, "monitoring/alert_console.html", {
        "page_obj": page, "page_numbers": page_window(page), "clients": clients,
        "client": str(flt.client or ""), "severity": flt.severity, "status": flt.status,
        "severities": State.choices, "statuses": AlertStatus.choices,
        "counts": counts, "active_count": sum(counts.get(s, 0) for s in OPEN_STATUSES),
        "can_ack": has_capability(request.user, "alerts.ack"),
        "filtered": bool(flt.client or flt.severity or flt.status != "active"),
        # "Select all N matching" acts on this filter, on alerts opened by this moment.
        "selection_filter": replace(flt, opened_before=timezone.now()).as_data(),
        "limit": bulk.BULK_LIMIT,
    })


def _minutes(raw: str | None) -> int:
    try:
        minutes = int(raw or 60)
    except ValueError:
        raise bulk.BulkError("Snooze for a whole number of minutes.") from None
    return max(1, min(minutes, 60 * 24 * 30))


@requires("alerts.ack")
@require_POST
def alert_bulk(request):
    """Bulk acknowledge / snooze / resolve of the rows checked (`ids`), or of every alert
    matching the console's filter (`scope=filter`: a confirmation stating the count first,
    then the action on the filter as submitted; see monitoring/bulk.py)."""
    verb = request.POST.get("verb") or ""
    back = request.POST.get("next") or ""
    back = back if back.startswith("/monitoring/") else reverse("alerts")
    if verb not in bulk.VERBS:
        messages.error(request, "Unknown action.")
        return redirect(back)
    try:
        minutes = _minutes(request.POST.get("minutes")) if verb == "snooze" else None
        if request.POST.get("scope") == "filter":
            return _bulk_filter(request, verb, minutes, back)
        ids = [n for n in map(parse_id, request.POST.getlist("ids")) if n is not None]
        result = bulk.run(request.user, verb, ids=ids, minutes=minutes)
    except bulk.BulkError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if not result.matched:
        messages.error(request, "Select at least one alert.")
    else:
        messages.success(request, result.summary())
    return redirect(back)


def _bulk_filter(request, verb: str, minutes: int | None, back: str):
    flt = bulk.AlertFilter.parse({k: v for k, v in request.POST.items()
                                  if k in bulk.AlertFilter.FIELDS})
    raw_expected = request.POST.get("expected") or ""
    confirmed = request.POST.get("confirm") == "yes" and parse_id(raw_expected) is not None
    typed = (request.POST.get("typed") or "").strip()
    if confirmed and verb == "resolve" and typed != raw_expected:
        messages.error(request, f"Type {raw_expected} to confirm resolving that many "
                                "alerts.")
        confirmed = False
    if not confirmed:
        client = (scoped(Client.objects.all(), request.user).filter(pk=flt.client).first()
                  if flt.client is not None else None)
        preview = bulk.preview(request.user, verb, flt)
        return render(request, "monitoring/alert_bulk_confirm.html", {
            "verb": verb, "verb_done": bulk.VERBS[verb][1], "preview": preview,
            "skipped": [(bulk.skip_reason(verb, s), n) for s, n in
                        sorted(preview.skipped.items())],
            "described": flt.describe(client.name if client else ""),
            "filter_data": flt.as_data(), "minutes": minutes, "next": back,
            "typed_needed": verb == "resolve"})
    expected = int(raw_expected)
    result = bulk.run(request.user, verb, flt=flt, minutes=minutes)
    text = result.summary()
    if len(result.changed) != expected:
        text += (f" The list changed after you confirmed {expected}: the filter, applied "
                 f"again now, changed {len(result.changed)}.")
    (messages.success if result.changed else messages.warning)(request, text)
    return redirect(back)


@requires("monitoring.view")
def alert_detail(request, pk: int):
    from .alert_history import history

    alert = get_object_or_404(scoped(Alert.objects.select_related(
        "client", "device", "parent", "check_template__policy"), request.user), pk=pk)
    children = scoped(alert.children.select_related("device"), request.user)[:200]
    notes = alert.notifications.select_related("channel").prefetch_related("attempt_log")
    tickets, linkable = [], []
    can_ticket = has_capability(request.user, "tickets.view")
    if can_ticket:
        from watchkeeper.helpdesk import alert_tickets

        tickets = list(alert_tickets.tickets_of_alert(request.user, alert.pk))
        if has_capability(request.user, "tickets.change"):
            linkable = [t for t in alert_tickets.linkable_tickets(request.user, alert.client_id)
                        if t not in tickets]
    return render(request, "monitoring/alert_detail.html", {
        "alert": alert, "children": children, "notifications": notes[:100],
        "ticket": tickets[0] if tickets else None, "tickets": tickets, "linkable": linkable,
        "can_ticket": has_capability(request.user, "tickets.change"),
        "history": history(alert), "snooze_choices": SNOOZE_CHOICES,
        "can_ack": has_capability(request.user, "alerts.ack")})


SNOOZE_CHOICES = [(60, "1 hour"), (240, "4 hours"), (1440, "1 day"), (10080, "1 week")]


@requires("tickets.change")
@require_POST
def alert_ticket(request, pk: int):
    """Open a ticket for the alert, or link it to an open ticket of its client."""
    from watchkeeper.helpdesk import alert_tickets

    alert = get_object_or_404(scoped(Alert.objects.select_related("client", "device"),
                                     request.user), pk=pk)
    common = {"alert_id": alert.pk, "check_name": alert.check_name,
              "severity": alert.severity, "summary": alert.summary}
    if request.POST.get("verb") == "link":
        ticket = next((t for t in alert_tickets.linkable_tickets(request.user,
                                                                 alert.client_id)
                       if str(t.pk) == request.POST.get("ticket")), None)
        if ticket is None:
            messages.error(request, "Choose an open ticket of this client.")
            return redirect("alert_detail", alert.pk)
        try:
            linked = alert_tickets.link_ticket(actor=request.user, ticket=ticket,
                                               device=alert.device, **common)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return redirect("alert_detail", alert.pk)
        messages.success(request, f"Alert linked to ticket {ticket.subject}." if linked
                         else "The alert was already linked to that ticket.")
        return redirect("alert_detail", alert.pk)
    ticket, created = alert_tickets.open_ticket(actor=request.user, client=alert.client,
                                                device=alert.device, **common)
    messages.success(request, "Ticket opened for this alert." if created
                     else "This alert already has a ticket.")
    return redirect("ticket", ticket.pk)


alert_ticket.wk_model = Alert


alert_detail.wk_model = Alert


# --- Health overview -------------------------------------------------------------------------

@requires("monitoring.view")
def health(request):
    clients = list(scoped(Client.objects.order_by("name"), request.user))
    open_alerts = scoped(Alert.objects.filter(status__in=OPEN_STATUSES), request.user)
    by_client: dict[int, dict[str, int]] = defaultdict(dict)
    for cid, sev, n in open_alerts.values_list("client_id", "severity").annotate(
            n=Count("id")).values_list("client_id", "severity", "n"):
        by_client[cid][sev] = n
    devices = dict(scoped(all_devices(), request.user).values_list("client_id")
                   .annotate(n=Count("id")).values_list("client_id", "n"))
    failing = dict(scoped(CheckState.objects.exclude(state=State.OK), request.user)
                   .values_list("client_id").annotate(n=Count("device_id", distinct=True))
                   .values_list("client_id", "n"))
    rows = []
    for c in clients:
        counts = by_client.get(c.pk, {})
        worst = next((s for s in SEVERITY_ORDER if counts.get(s)), State.OK)
        rows.append({"client": c, "critical": counts.get(State.CRITICAL, 0),
                     "warning": counts.get(State.WARNING, 0),
                     "unknown": counts.get(State.UNKNOWN, 0), "devices": devices.get(c.pk, 0),
                     "failing": failing.get(c.pk, 0), "worst": worst})
    rows.sort(key=lambda r: (-r["critical"], -r["warning"], r["client"].name))
    return render(request, "monitoring/health.html", {"rows": rows})


# --- Maintenance ------------------------------------------------------------------------------

class WindowForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.none())
    name = forms.CharField(max_length=200)
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type":
                                                                      "datetime-local"}))
    duration_minutes = forms.IntegerField(min_value=1, max_value=60 * 24 * 14, initial=120)
    rrule = forms.CharField(max_length=500, required=False, label="Recurrence (RRULE)",
                            help_text="e.g. FREQ=WEEKLY;BYDAY=SU — empty for once")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.order_by("name"), user)


@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def maintenance_calendar(request):
    can_change = has_capability(request.user, "monitoring.change")
    form = WindowForm(request.POST or None, user=request.user)
    if request.method == "POST" and can_change and form.is_valid():
        try:
            actions.create_maintenance(actor=request.user, **form.cleaned_data)
        except actions.ActionError as exc:
            form.add_error("rrule", str(exc))
        else:
            messages.success(request, "Maintenance window created.")
            return redirect("monitoring_maintenance")
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=28)
    windows = list(scoped(MaintenanceWindow.objects.select_related("client", "site",
                                                                   "device"), request.user))
    days: dict[datetime, list] = {start + timedelta(days=i): [] for i in range(28)}
    for w in windows:
        for begin, finish in maintenance.occurrences(w, start, end):
            day = max(begin, start).replace(hour=0, minute=0, second=0, microsecond=0)
            if day in days:
                days[day].append({"window": w, "begin": begin, "end": finish})
    return render(request, "monitoring/maintenance.html", {
        "days": [(d, sorted(items, key=lambda i: i["begin"])) for d, items in days.items()],
        "windows": windows, "form": form, "can_change": can_change})


@requires("monitoring.change")
@require_POST
def maintenance_delete(request, pk: int):
    window = get_object_or_404(scoped(MaintenanceWindow.objects.all(), request.user), pk=pk)
    actions.delete_maintenance(actor=request.user, window=window)
    messages.success(request, f"Maintenance window {window.name} deleted.")
    return redirect("monitoring_maintenance")


maintenance_delete.wk_model = MaintenanceWindow


# --- Device checks ---------------------------------------------------------------------------

@requires("monitoring.view")
def device_checks(request, pk: int):
    device = get_object_or_404(scoped(all_devices().select_related("client", "site"),
                                      request.user), pk=pk)
    effective = policies.effective_checks_for([device.pk], include_disabled=True).get(
        device.pk, [])
    states = {s.check_template_id: s for s in CheckState.objects.filter(device=device)}
    rows = [{"check": c, "state": states.get(c["id"])} for c in effective]
    server = [{"check": c, "state": CheckState.objects.filter(check_template=c).first()}
              for c in Check.objects.filter(device=device, kind__in=list(SERVER_KINDS))]
    alerts = Alert.objects.filter(device=device).filter(
        Q(status__in=OPEN_STATUSES) | Q(opened_at__gte=timezone.now() - timedelta(days=30)))
    return render(request, "monitoring/device_checks.html", {
        "device": device, "rows": rows, "server": server,
        "alerts": alerts.order_by("-opened_at")[:50]})


device_checks.wk_model = all_devices().model

