"""Technician pages of the helpdesk: queues and "my work" (one list with server-side filter,
sort and paging; the URL is the saved view), the ticket page (timeline, composer, side
panel, inline edits), merge, parent/child, bulk actions, the dispatcher view, triage,
the inbound quarantine, routing rules with preview, canned responses and CSAT results.
Reads go through scoped(); writes call actions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from watchkeeper.core.converters import parse_id
from watchkeeper.core.models import Client, Contact, User
from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped
from watchkeeper.core.views.listing import page_window

from . import actions, attachments, routing, selectors, templating
from .choices import (
    OPEN_STATUSES,
    TRANSITIONS,
    InboundState,
    Level,
    Priority,
    Status,
    TicketType,
)
from .forms import TicketForm
from .mailin import intake as mailin
from .models import (
    Attachment,
    CannedResponse,
    CustomFieldDefinition,
    InboundMessage,
    Queue,
    RoutingRule,
    Ticket,
)

PAGE_SIZE = 50


def _errors(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


def _ticket(request, pk: int) -> Ticket:
    return get_object_or_404(selectors.visible_tickets(request.user)
                             .select_related("client", "contact", "queue", "assignee"), pk=pk)


@requires("tickets.view")
def ticket_list(request, preset: str = ""):
    user = request.user
    params = request.GET.copy()
    if preset == "mine":
        params["assignee"] = "me"
        if "status" not in params:
            params.setlist("status", ["open"])
    if preset == "triage" and "queue" not in params:
        params["queue"] = "triage"
    query = selectors.TicketQuery.from_params(params)
    page = Paginator(selectors.filter_tickets(user, query), PAGE_SIZE).get_page(
        request.GET.get("page"))
    keep = params.copy()
    keep.pop("page", None)
    unsorted = keep.copy()
    unsorted.pop("sort", None)
    return render(request, "helpdesk/ticket_list.html", {
        "page": page, "page_numbers": page_window(page), "tickets": page.object_list,
        "query": query, "preset": preset,
        "querystring": keep.urlencode(), "unsorted": unsorted.urlencode(),
        "statuses": Status.choices, "priorities": Priority.choices, "types": TicketType.choices,
        "queues": Queue.objects.all(), "clients": scoped(Client.objects.only("id", "name"), user),
        "technicians": selectors.technicians(user),
        "can_change": has_capability(user, "tickets.change"),
        "title": {"mine": "My work", "triage": "Triage"}.get(preset, "Tickets"),
    })


@requires("tickets.change")
def ticket_create(request):
    form = TicketForm(request.POST or None, user=request.user,
                      initial={"client": request.GET.get("client")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = actions.create_ticket(
                actor=request.user, subject=data["subject"], client=data["client"],
                contact=data["contact"], description=data["description"], type=data["type"],
                impact=data["impact"], urgency=data["urgency"], queue=data["queue"],
                source=data["source"], assignee=request.user)
        except ValidationError as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, f"Ticket {ticket.reference} created.")
            return redirect("ticket", ticket.pk)
    return render(request, "helpdesk/ticket_form.html", {"form": form})


@requires("tickets.view")
def ticket_detail(request, pk: int):
    ticket = _ticket(request, pk)
    user = request.user
    recent = []
    if ticket.client_id:
        recent = list(selectors.visible_tickets(user).filter(client_id=ticket.client_id)
                      .exclude(pk=ticket.pk).order_by("-created_at")[:5])
    devices = scoped(ticket.devices.all(), user)
    linkable = []
    if ticket.client_id and has_capability(user, "tickets.change"):
        from watchkeeper.inventory.selectors import all_devices

        linkable = list(scoped(all_devices().filter(client_id=ticket.client_id), user)
                        .exclude(pk__in=[d.pk for d in devices]).order_by("name")
                        .only("id", "name")[:1000])
    return render(request, "helpdesk/ticket_detail.html", {
        "linkable_devices": linkable,
        "ticket": ticket, "alert_active": _alert_active(ticket),
        "entries": selectors.timeline(ticket),
        "attachments": ticket.attachments.all(), "recent": recent, "devices": devices,
        "children": selectors.visible_tickets(user).filter(parent=ticket),
        "mails": ticket.mails.all()[:20],
        "next_statuses": [(s, Status(s).label) for s in Status.values
                          if s in TRANSITIONS.get(ticket.status, ()) or s == ticket.status],
        "priorities": Priority.choices, "levels": Level.choices, "types": TicketType.choices,
        "queues": Queue.objects.all(), "technicians": selectors.technicians(user),
        "clients": scoped(Client.objects.only("id", "name"), user) if not ticket.client_id
        else [],
        "contacts": scoped(Contact.objects.filter(client_id=ticket.client_id), user)
        if ticket.client_id else [],
        "canned": CannedResponse.objects.filter(is_active=True),
        "can_change": has_capability(user, "tickets.change"),
        "is_watching": ticket.watchers.filter(pk=user.pk).exists(),
        "watchers": ticket.watchers.all(),
        "custom_fields": [(d, ticket.custom_fields.get(d.key, "")) for d in
                          CustomFieldDefinition.objects.filter(is_current=True)],
    })


@requires("tickets.change")
@require_POST
def ticket_reply(request, pk: int):
    ticket = _ticket(request, pk)
    public = request.POST.get("visibility") == "public"
    status = request.POST.get("status") or None
    try:
        actions.add_entry(actor=request.user, ticket=ticket, body=request.POST.get("body", ""),
                          public=public, set_status=status, **_alert_choice(request))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "Reply sent." if public else "Internal note added.")
    return redirect("ticket", ticket.pk)


def _parse_fields(request, ticket: Ticket) -> dict:
    post, user, fields = request.POST, request.user, {}
    for name in ("status", "priority", "type", "impact", "urgency", "subject"):
        if name in post and post[name] and post[name] != getattr(ticket, name):
            fields[name] = post[name]
    if "queue" in post:
        queue = Queue.objects.filter(pk=post["queue"]).first() if post["queue"] else None
        if queue != ticket.queue:
            fields["queue"] = queue
    if "assignee" in post:
        assignee = None
        if post["assignee"]:
            assignee = selectors.technicians(user).filter(pk=post["assignee"]).first()
            if assignee is None:
                raise ValidationError({"assignee": "Not a technician."})
        if assignee != ticket.assignee:
            fields["assignee"] = assignee
    if "client" in post and post["client"] and not ticket.client_id:
        fields["client"] = get_object_or_404(scoped(Client.objects.all(), user),
                                             pk=post["client"])
    if "contact" in post:
        contact = None
        if post["contact"]:
            contact = get_object_or_404(scoped(Contact.objects.all(), user), pk=post["contact"])
        if contact != ticket.contact:
            fields["contact"] = contact
    custom = {key[3:]: value for key, value in post.items() if key.startswith("cf_")}
    if custom and any(str(ticket.custom_fields.get(k, "")) != v for k, v in custom.items()):
        fields["custom_fields"] = custom
    if "tags" in post:
        tags = sorted({t.strip() for t in post["tags"].split(",") if t.strip()})
        if tags != ticket.tags:
            fields["tags"] = tags
    if "parent" in post:
        parent = None
        ref = post["parent"].strip().upper().removeprefix("WK-").lstrip("0")
        if ref:
            parent = selectors.visible_tickets(user).filter(pk=parse_id(ref)).first()
            if parent is None:
                raise ValidationError({"parent": "No such ticket."})
        if parent != ticket.parent:
            fields["parent"] = parent
    return fields


def _alert_active(ticket: Ticket) -> bool:
    """Whether the ticket was opened for a monitoring alert that is still active (its
    forms then ask what resolving the ticket does to the alert)."""
    from watchkeeper.monitoring import selectors as monitoring

    from .events import alert_id_of

    alert_id = alert_id_of(ticket)
    return alert_id is not None and monitoring.alert_is_active(alert_id)


def _alert_choice(request) -> dict:
    """The "and the alert?" answer of a form that may resolve an alert's ticket."""
    choice = {}
    if request.POST.get("alert_action"):
        choice["alert_action"] = request.POST["alert_action"]
        if choice["alert_action"] == "snooze":
            minutes = request.POST.get("snooze_minutes", "60")
            choice["snooze_minutes"] = int(minutes) if minutes.isdigit() else 0
    return choice


@requires("tickets.change")
@require_POST
def ticket_update(request, pk: int):
    ticket = _ticket(request, pk)
    try:
        fields = _parse_fields(request, ticket)
        if fields:
            actions.change_ticket(actor=request.user, ticket=ticket, **fields,
                                  **_alert_choice(request))
            messages.success(request, "Ticket updated.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("ticket", ticket.pk)


@requires("tickets.change")
@require_POST
def ticket_watch(request, pk: int):
    ticket = _ticket(request, pk)
    if request.POST.get("watch") == "1":
        actions.set_watchers(actor=request.user, ticket=ticket, add=[request.user])
    else:
        actions.set_watchers(actor=request.user, ticket=ticket, remove=[request.user])
    return redirect("ticket", ticket.pk)


@requires("tickets.change")
@require_POST
def ticket_devices(request, pk: int):
    """Link a device of the ticket's client to the ticket, or unlink one (picker by name)."""
    from watchkeeper.inventory.selectors import all_devices

    ticket = _ticket(request, pk)
    linked = list(ticket.devices.all())
    device = scoped(all_devices().filter(client_id=ticket.client_id), request.user).filter(
        pk=request.POST.get("device") or 0).first() if ticket.client_id else None
    if device is None:
        messages.error(request, "Choose a device of this ticket's client.")
    elif request.POST.get("verb") == "remove":
        actions.set_devices(actor=request.user, ticket=ticket,
                            devices=[d for d in linked if d.pk != device.pk])
        messages.success(request, f"Device {device.name} unlinked.")
    else:
        actions.set_devices(actor=request.user, ticket=ticket,
                            devices=[*[d for d in linked if d.pk != device.pk], device])
        messages.success(request, f"Device {device.name} linked.")
    return redirect("ticket", ticket.pk)


ticket_devices.wk_model = Ticket


@requires("tickets.change")
@require_POST
def ticket_attach(request, pk: int):
    """Attach a file to the ticket (size limit and type sniffing in attachments.store)."""
    ticket = _ticket(request, pk)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file to attach.")
        return redirect("ticket", ticket.pk)
    limit = settings.ATTACHMENT_MAX_BYTES
    if upload.size > limit:  # refused before reading it into memory
        messages.error(request, f"{upload.name} is larger than the {limit // 2**20} MB limit.")
        return redirect("ticket", ticket.pk)
    try:
        actions.attach_file(actor=request.user, ticket=ticket, filename=upload.name,
                            data=upload.read(), declared_type=upload.content_type or "")
    except attachments.AttachmentRefused as exc:
        messages.error(request, f"{upload.name} not attached: {exc}")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"{upload.name} attached.")
    return redirect("ticket", ticket.pk)


ticket_attach.wk_model = Ticket


@requires("tickets.change")
@require_POST
def ticket_merge(request, pk: int):
    source = _ticket(request, pk)
    ref = request.POST.get("target", "").strip().upper().removeprefix("WK-").lstrip("0")
    target = selectors.visible_tickets(request.user).filter(
        pk=parse_id(ref)).first()
    if target is None:
        messages.error(request, "No ticket with that reference.")
        return redirect("ticket", source.pk)
    try:
        actions.merge_tickets(actor=request.user, source=source, target=target)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("ticket", source.pk)
    messages.success(request, f"{source.reference} merged into {target.reference}.")
    return redirect("ticket", target.pk)


@requires("tickets.change")
@require_POST
def ticket_bulk(request):
    ids = [n for n in map(parse_id, request.POST.getlist("ids")) if n is not None]
    tickets = list(selectors.visible_tickets(request.user).filter(pk__in=ids))
    op = request.POST.get("op")
    fields: dict = {}
    if op == "assign":
        value = request.POST.get("assignee", "")
        fields["assignee"] = (selectors.technicians(request.user).filter(pk=value).first()
                              if value else None)
    elif op == "status" and request.POST.get("status") in Status.values:
        fields["status"] = request.POST["status"]
    elif op == "close":
        fields["status"] = Status.CLOSED
    if not tickets or not fields:
        messages.error(request, "Choose tickets and an action.")
        return redirect(request.POST.get("next") or "tickets")
    results = actions.bulk_change(actor=request.user, tickets=tickets, **fields)
    return render(request, "helpdesk/bulk_result.html", {
        "results": results, "next": request.POST.get("next") or reverse("tickets")})


@requires("tickets.view")
def attachment_download(request, pk: int):
    attachment = get_object_or_404(scoped(Attachment.objects.all(), request.user), pk=pk)
    return attachments.response(attachment)


@requires("tickets.view")
def ticket_original_mail(request, pk: int, inbound: int):
    """A message as it was received, for whoever sees the ticket it became."""
    ticket = _ticket(request, pk)
    row = get_object_or_404(InboundMessage, pk=inbound, ticket=ticket)
    return attachments.raw_mail_response(row)


@requires("tickets.view")
def dispatch(request):
    rows, unassigned = selectors.workload(request.user)
    waiting = selectors.visible_tickets(request.user).filter(
        status__in=OPEN_STATUSES, assignee__isnull=True).select_related("client")[:50]
    return render(request, "helpdesk/dispatch.html", {
        "rows": rows, "unassigned": unassigned, "waiting": waiting,
        "can_change": has_capability(request.user, "tickets.change")})


@requires("tickets.change")
@require_POST
def dispatch_assign(request, pk: int):
    ticket = _ticket(request, pk)
    tech = get_object_or_404(selectors.technicians(request.user), pk=request.POST.get("assignee"))
    if not selectors.can_work_on(tech, ticket):
        messages.error(request, f"{tech.display_name} is not assigned to this client.")
    else:
        try:
            actions.change_ticket(actor=request.user, ticket=ticket, assignee=tech)
            messages.success(request, f"{ticket.reference} assigned to {tech.display_name}.")
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    return redirect("ticket_dispatch")


@requires("tickets.admin")
def inbound_list(request):
    state = request.GET.get("state") or InboundState.QUARANTINED
    qs = InboundMessage.objects.defer("raw")
    if state in InboundState.values:
        qs = qs.filter(state=state)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "helpdesk/inbound_list.html", {
        "page": page, "rows": page.object_list, "state": state,
        "states": InboundState.choices})


@requires("tickets.admin")
def inbound_detail(request, pk: int):
    row = get_object_or_404(InboundMessage, pk=pk)
    raw = row.raw_bytes()
    return render(request, "helpdesk/inbound_detail.html", {
        "row": row, "preview": raw[:20000].decode("utf-8", "replace"),
        "truncated": len(raw) > 20000})


@requires("tickets.admin")
@require_POST
def inbound_reprocess(request, pk: int):
    row = get_object_or_404(InboundMessage, pk=pk)
    try:
        outcome = mailin.reprocess(actor=request.user, inbound=row,
                                   force=request.POST.get("force") == "1")
    except mailin.Unprocessable as exc:
        messages.error(request, f"Still not processable: {exc}")
        return redirect("ticket_inbound_detail", row.pk)
    if outcome.ticket is not None:
        messages.success(request, f"Processed: {outcome.kind} {outcome.ticket.reference}.")
        return redirect("ticket", outcome.ticket.pk)
    messages.error(request, f"Still not processable: {outcome.reason}")
    return redirect("ticket_inbound_detail", row.pk)


def _rule_from_post(post, rule: RoutingRule | None = None) -> tuple[RoutingRule, dict]:
    fields_ = post.getlist("c_field")
    ops, values = post.getlist("c_op"), post.getlist("c_value")
    conditions = [{"field": f, "op": o, "value": v} for f, o, v in zip(fields_, ops, values,
                                                                          strict=False) if f]
    data = {
        "name": post.get("name", "").strip(), "position": int(post.get("position") or 100),
        "is_active": post.get("is_active") == "on", "match_all": post.get("match") != "any",
        "conditions": conditions,
        "set_queue": Queue.objects.filter(pk=post.get("set_queue") or 0).first(),
        "set_assignee": User.objects.filter(pk=post.get("set_assignee") or 0,
                                            is_active=True).first(),
        "set_priority": post.get("set_priority", ""),
        "add_tags": sorted({t.strip() for t in post.get("add_tags", "").split(",") if t.strip()}),
        "stop": post.get("stop") == "on",
    }
    draft = RoutingRule(**{k: v for k, v in data.items()})
    if rule is not None:
        draft.pk = rule.pk
    return draft, data


@requires("tickets.admin")
def rule_list(request):
    return render(request, "helpdesk/rule_list.html", {"rules": RoutingRule.objects.all()
                  .select_related("set_queue", "set_assignee")})


@requires("tickets.admin")
def rule_edit(request, pk: int | None = None):
    rule = get_object_or_404(RoutingRule, pk=pk) if pk else None
    preview, errors = None, []
    draft = rule or RoutingRule(conditions=[{"field": "subject", "op": "contains", "value": ""}])
    if request.method == "POST":
        draft, data = _rule_from_post(request.POST, rule)
        try:
            data["conditions"] = routing.validate_conditions(data["conditions"])
        except ValidationError as exc:
            errors = exc.messages
        if not errors and request.POST.get("action") == "preview":
            past = selectors.visible_tickets(request.user).order_by("-created_at")[:200]
            preview = routing.preview(draft, past)
        elif not errors:
            try:
                if rule:
                    actions.update_rule(actor=request.user, rule=rule, **data)
                else:
                    rule = actions.create_rule(actor=request.user, **data)
            except ValidationError as exc:
                errors = exc.messages
            else:
                messages.success(request, f"Rule “{rule.name}” saved (version {rule.version}).")
                return redirect("ticket_rules")
    conditions = list(draft.conditions or []) + [{"field": "", "op": "contains", "value": ""}]
    return render(request, "helpdesk/rule_form.html", {
        "rule": rule, "draft": draft, "conditions": conditions, "errors": errors,
        "preview": preview, "matched": sum(1 for r in preview or [] if r["matches"]),
        "fields": routing.FIELDS, "ops": routing.OPS, "queues": Queue.objects.all(),
        "technicians": selectors.technicians(request.user), "priorities": Priority.choices})


@requires("tickets.admin")
@require_POST
def rule_delete(request, pk: int):
    rule = get_object_or_404(RoutingRule, pk=pk)
    actions.delete_rule(actor=request.user, rule=rule)
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("ticket_rules")


@requires("tickets.view")
def canned_list(request):
    return render(request, "helpdesk/canned_list.html", {
        "rows": CannedResponse.objects.all(),
        "can_admin": has_capability(request.user, "tickets.admin")})


@requires("tickets.admin")
@require_POST
def canned_create(request):
    try:
        actions.create_object(actor=request.user, model=CannedResponse,
                              title=request.POST.get("title", "").strip(),
                              body=request.POST.get("body", "").strip())
        messages.success(request, "Canned response added.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("ticket_canned")


@requires("tickets.view")
def csat_results(request):
    return render(request, "helpdesk/csat_results.html",
                  {"results": selectors.csat_results(request.user)})


for _view in (ticket_detail, ticket_reply, ticket_update, ticket_watch, ticket_merge,
              dispatch_assign):
    _view.wk_model = Ticket
attachment_download.wk_model = Attachment
ticket_original_mail.wk_model = Ticket
for _view in (inbound_detail, inbound_reprocess):
    _view.wk_model = InboundMessage
for _view in (rule_edit, rule_delete):
    _view.wk_model = RoutingRule


@requires("tickets.admin")
def helpdesk_settings(request):
    """Queues, the priority matrix, notification templates, custom fields and clients' mail
    domains. Each form posts here with `form=<name>`; every save goes through an action."""
    from watchkeeper.core.models import Client as ClientModel

    from . import notify
    from .choices import FieldType, NotificationKind
    from .models import ClientEmailDomain, CustomFieldDefinition

    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form, post, user = request.POST.get("form"), request.POST, request.user
        try:
            if form == "queue":
                actions.create_object(actor=user, model=Queue, name=post.get("name", "").strip(),
                                      description=post.get("description", "").strip())
            elif form == "matrix":
                matrix = {i: {u: post.get(f"m_{i}_{u}", "") for u in Level.values}
                          for i in Level.values}
                actions.save_priority_matrix(actor=user, matrix=matrix)
            elif form == "template":
                actions.save_template(actor=user, kind=post.get("kind", ""),
                                      subject=post.get("subject", ""), body=post.get("body", ""))
            elif form == "field":
                choices = [c.strip() for c in post.get("choices", "").split(",") if c.strip()]
                actions.define_custom_field(actor=user, key=post.get("key", "").strip(),
                                            label=post.get("label", "").strip(),
                                            field_type=post.get("field_type", "text"),
                                            choices=choices,
                                            required=post.get("required") == "on")
            elif form == "domain":
                client = get_object_or_404(scoped(ClientModel.objects.all(), user),
                                           pk=post.get("client") or 0)
                actions.create_object(actor=user, model=ClientEmailDomain, client=client,
                                      domain=post.get("domain", "").strip().lower())
            else:
                raise ValidationError("Unknown form.")
        except ValidationError as exc:
            errors[form or ""] = exc.messages
        else:
            messages.success(request, "Saved.")
            return redirect(f"{reverse('ticket_settings')}#{form}")
    version, matrix = actions.current_matrix()
    templates = []
    for kind, label in NotificationKind.choices:
        tpl_version, subject, body = notify.current_template(kind)
        if errors.get("template") and request.POST.get("kind") == kind:
            subject, body = request.POST.get("subject", ""), request.POST.get("body", "")
        templates.append({"kind": kind, "label": label, "version": tpl_version,
                          "subject": subject, "body": body})
    return render(request, "helpdesk/settings.html", {
        "errors": errors, "queues": Queue.objects.all(), "matrix_version": version,
        "matrix_rows": [(i, label, [(u, matrix.get(i, {}).get(u, "")) for u in Level.values])
                        for i, label in Level.choices],
        "levels": Level.choices, "priorities": Priority.choices, "templates": templates,
        "variables": templating.VARIABLES,
        "fields": CustomFieldDefinition.objects.filter(is_current=True),
        "field_types": FieldType.choices,
        "domains": scoped(ClientEmailDomain.objects.select_related("client"), request.user),
        "clients": scoped(ClientModel.objects.only("id", "name"), request.user),
    })
