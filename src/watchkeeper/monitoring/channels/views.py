"""Pages of notification channels: list, create, edit, a channel's page with its recent
notifications, and the catch-up: "also notify about the N alerts open now that match",
offered on the form (the count follows the scope fields through htmx) and on the page.
Reads through scoped(); writes through actions."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from watchkeeper.core.converters import parse_id
from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from .. import actions
from ..choices import NotificationStatus
from ..models import NotificationChannel
from . import notify
from .forms import ChannelForm, scope_from


def _channels(request):
    return scoped(NotificationChannel.objects.select_related("client"), request.user)


def _catch_up_count(scope: dict | None, channel=None) -> int:
    if scope is None or not scope["is_active"] or not scope["event_kinds"]:
        return 0
    return notify.catch_up_matches(client_id=scope["client_id"],
                                   min_severity=scope["min_severity"],
                                   event_kinds=scope["event_kinds"], channel=channel).count()


def _saved(request, channel: NotificationChannel, verb: str) -> None:
    queued = len(getattr(channel, "caught_up", []) or [])
    text = f"Channel “{channel.name}” {verb}."
    if queued:
        text += f" {queued} open alert{'s' if queued != 1 else ''} queued for it (catch-up)."
    messages.success(request, text)


@requires("monitoring.view")
def channel_list(request):
    rows = _channels(request).annotate(
        failed=Count("notifications", filter=Q(notifications__status=NotificationStatus.FAILED)))
    return render(request, "monitoring/channels/list.html", {
        "channels": rows.order_by("name", "id")[:500],
        "can_change": has_capability(request.user, "monitoring.change")})


@requires("monitoring.change")
@require_http_methods(["GET", "POST"])
def channel_create(request):
    form = ChannelForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            channel = actions.create_channel(actor=request.user,
                                             catch_up=form.cleaned_data["catch_up"],
                                             **form.action_fields())
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            _saved(request, channel, "created")
            return redirect("monitoring_channel", channel.pk)
    params = request.POST if request.method == "POST" else _initial_params(form)
    return render(request, "monitoring/channels/form.html", {
        "form": form, "channel": None,
        "catch_up": _catch_up_context(scope_from(params, user=request.user), None, params)})


@requires("monitoring.view")
def channel_detail(request, pk: int):
    channel = get_object_or_404(_channels(request).prefetch_related("contacts"), pk=pk)
    notes = channel.notifications.select_related("alert", "event").order_by(
        "-created_at", "-id")[:50]
    return render(request, "monitoring/channels/detail.html", {
        "channel": channel, "notifications": notes, "url": notify.mask_url(
            notify.channel_url(channel)),
        "kinds": channel.event_kinds or list(notify.DEFAULT_KINDS),
        "available": notify.catch_up_candidates(channel).count(),
        "can_change": has_capability(request.user, "monitoring.change")})


channel_detail.wk_model = NotificationChannel


@requires("monitoring.change")
@require_http_methods(["GET", "POST"])
def channel_edit(request, pk: int):
    channel = get_object_or_404(_channels(request).prefetch_related("contacts"), pk=pk)
    initial = {
        "name": channel.name, "client": channel.client, "kind": channel.kind,
        "recipients": "\n".join(channel.recipients or []),
        "contacts": list(channel.contacts.all()),
        "url": notify.mask_url(notify.channel_url(channel)),
        "webhook_format": channel.webhook_format,
        "event_kinds": channel.event_kinds or list(notify.DEFAULT_KINDS),
        "min_severity": channel.min_severity, "subject_template": channel.subject_template,
        "body_template": channel.body_template, "digest_minutes": channel.digest_minutes,
        "is_active": channel.is_active}
    form = ChannelForm(request.POST or None, user=request.user, channel=channel,
                       initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            channel = actions.update_channel(actor=request.user, channel=channel,
                                             catch_up=form.cleaned_data["catch_up"],
                                             **form.action_fields())
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            _saved(request, channel, "saved")
            return redirect("monitoring_channel", channel.pk)
    params = request.POST if request.method == "POST" else _initial_params(form)
    return render(request, "monitoring/channels/form.html", {
        "form": form, "channel": channel,
        "catch_up": _catch_up_context(scope_from(params, channel=channel), channel, params)})


channel_edit.wk_model = NotificationChannel


@requires("monitoring.change")
@require_POST
def channel_catch_up(request, pk: int):
    channel = get_object_or_404(_channels(request), pk=pk)
    if not channel.is_active:
        messages.error(request, "The channel is switched off: switch it on to catch up.")
    else:
        ids = actions.catch_up_channel(actor=request.user, channel=channel)
        if ids:
            messages.success(request, f"{len(ids)} open alert{'s' if len(ids) != 1 else ''} "
                                      f"queued for “{channel.name}” (catch-up).")
        else:
            messages.info(request, "No open alert is waiting for this channel.")
    return redirect("monitoring_channel", channel.pk)


channel_catch_up.wk_model = NotificationChannel


@requires("monitoring.change")
@require_GET
def channel_catch_up_preview(request):
    """htmx: the catch-up offer for the form's current values (channel=<id> when editing)."""
    channel = None
    raw = request.GET.get("channel") or ""
    if parse_id(raw) is not None:
        channel = get_object_or_404(_channels(request), pk=parse_id(raw))
    if request.headers.get("HX-Request") != "true":  # a fragment, not a page: go to the form
        return redirect("monitoring_channel_edit", channel.pk) if channel else \
            redirect("monitoring_channel_new")
    scope = scope_from(request.GET, channel=channel, user=request.user)
    return render(request, "monitoring/channels/_catch_up.html", {
        "catch_up": _catch_up_context(scope, channel, request.GET)})


def _initial_params(form: ChannelForm):
    """The form's initial values as a QueryDict-like object, for the first count."""
    from django.http import QueryDict

    params = QueryDict(mutable=True)
    client = form.initial.get("client")
    if client is not None:
        params["client"] = str(client.pk)
    params["min_severity"] = form.initial.get("min_severity") or \
        form.fields["min_severity"].initial
    params.setlist("event_kinds", form.initial.get("event_kinds")
                   or form.fields["event_kinds"].initial)
    if form.initial.get("is_active", True):
        params["is_active"] = "on"
    return params


def _catch_up_context(scope: dict | None, channel, params) -> dict:
    return {"count": _catch_up_count(scope, channel), "checked": bool(params.get("catch_up")),
            "channel": channel, "active": scope is None or scope["is_active"]}
