"""Client portal pages of the helpdesk: a client user submits, follows and replies to their
own client's tickets (scoped() keeps them to it), sees public entries only, and sees a
health summary of their devices. Also the public CSAT survey page (token link)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from watchkeeper.core.permissions import public, requires
from watchkeeper.core.tenancy import scoped

from .. import actions, attachments, selectors
from ..choices import Source
from ..forms import PortalTicketForm, SurveyForm
from ..models import Attachment, Ticket


def _own(request, pk: int):
    return get_object_or_404(selectors.visible_tickets(request.user).select_related("client"),
                             pk=pk)


def device_health(user) -> dict | None:
    """Counts of the user's devices online/offline, if the inventory app is present."""
    try:
        from watchkeeper.inventory import selectors as inv
        from watchkeeper.inventory.selectors import all_devices
    except ImportError:
        return None
    devices = list(scoped(all_devices().only("id", "name", "last_seen_at", "reboot_required",
                                               "pending_updates", "client_id"), user)
                   .order_by("name")[:200])
    online = [d for d in devices if inv.is_online(d.last_seen_at)]
    return {"total": len(devices), "online": len(online),
            "offline": sum(1 for d in devices if d.last_seen_at and d not in online),
            "reboot": sum(1 for d in devices if d.reboot_required),
            "updates": sum(1 for d in devices if d.pending_updates),
            "devices": devices[:50],
            "online_ids": {d.pk for d in online}}


@requires("portal.view")
def portal_tickets(request):
    qs = selectors.visible_tickets(request.user).order_by("-updated_at", "-id")
    show = request.GET.get("show", "open")
    if show == "open":
        from ..choices import OPEN_STATUSES

        qs = qs.filter(status__in=OPEN_STATUSES)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(request, "helpdesk/portal_list.html", {
        "page": page, "tickets": page.object_list, "show": show,
        "health": device_health(request.user)})


@requires("portal.view")
def portal_ticket_new(request):
    form = PortalTicketForm(request.POST or None, request.FILES or None)
    user = request.user
    if request.method == "POST" and form.is_valid():
        from django.db import transaction

        from .. import attachments

        contact = user.client.contacts.filter(email__iexact=user.email).first() \
            if user.client_id else None
        upload = form.cleaned_data.get("attachment")
        try:
            with transaction.atomic():  # the request and its file, or neither
                ticket = actions.create_ticket(
                    actor=user, subject=form.cleaned_data["subject"], client=user.client,
                    contact=contact, requester_email=user.email,
                    requester_name=user.display_name,
                    description=form.cleaned_data["description"],
                    urgency=form.cleaned_data["urgency"], source=Source.PORTAL)
                if upload is not None:
                    # On the request's first message, so the client sees it there too.
                    first = ticket.entries.filter(is_public=True).order_by("id").first()
                    actions.attach_file(actor=user, ticket=ticket, filename=upload.name,
                                        data=upload.read(), entry=first,
                                        declared_type=upload.content_type or "")
        except attachments.AttachmentRefused as exc:
            form.add_error("attachment", str(exc))
        except ValidationError as exc:
            form.add_error(None, "; ".join(exc.messages))
        else:
            messages.success(request, f"Thank you — ticket {ticket.reference} is open.")
            return redirect("portal_ticket", ticket.pk)
    return render(request, "helpdesk/portal_form.html", {"form": form})


@requires("portal.view")
def portal_ticket(request, pk: int):
    ticket = _own(request, pk)
    return render(request, "helpdesk/portal_ticket.html", {
        "ticket": ticket, "entries": selectors.timeline(ticket, public_only=True),
        "attachments": ticket.attachments.filter(entry__is_public=True)})


@requires("portal.view")
@require_POST
def portal_reply(request, pk: int):
    ticket = _own(request, pk)
    try:
        actions.add_entry(actor=request.user, ticket=ticket, body=request.POST.get("body", ""),
                          public=True)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, "Your reply was added.")
    return redirect("portal_ticket", ticket.pk)


@requires("portal.view")
def portal_attachment(request, pk: int):
    attachment = get_object_or_404(
        scoped(Attachment.objects.filter(entry__is_public=True), request.user), pk=pk)
    return attachments.response(attachment)


@public
def csat_survey(request):
    """The survey behind the link in the resolution mail (?t=<token>); no sign-in."""
    token = request.POST.get("t") or request.GET.get("t") or ""
    survey = actions.survey_by_token(token) if token else None
    if survey is None:
        return render(request, "helpdesk/csat_survey.html", {"missing": True}, status=404)
    form = SurveyForm(request.POST or None)
    if request.method == "POST" and survey.answered_at is None and form.is_valid():
        try:
            actions.answer_survey(survey=survey, score=form.cleaned_data["score"],
                                  comment=form.cleaned_data["comment"])
        except ValidationError as exc:
            form.add_error(None, "; ".join(exc.messages))
    return render(request, "helpdesk/csat_survey.html", {"survey": survey, "form": form,
                                                         "token": token,
                                                         "reference": survey.ticket.reference})


for _view in (portal_ticket, portal_reply):
    _view.wk_model = Ticket
portal_attachment.wk_model = Attachment


def portal_work(user) -> dict:
    """The client's open requests and their devices' health, for the portal's home page
    (provided to core as the `core.portal_work` hook)."""
    from ..choices import OPEN_STATUSES

    open_tickets = selectors.visible_tickets(user).filter(status__in=OPEN_STATUSES)
    return {"open_tickets": list(open_tickets.order_by("-updated_at", "-id")[:10]),
            "open_count": open_tickets.count(), "health": device_health(user)}

