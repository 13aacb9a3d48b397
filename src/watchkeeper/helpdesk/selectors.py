"""Reads of the helpdesk, always through core.tenancy.scoped()."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Avg, Count, Prefetch, Q, QuerySet

from watchkeeper.core.choices import Role
from watchkeeper.core.converters import filter_by_id, parse_id
from watchkeeper.core.models import User
from watchkeeper.core.tenancy import scoped, visible_client_ids

from .choices import OPEN_STATUSES, Status
from .models import REFERENCE_PREFIX, CsatSurvey, InboundMessage, Ticket

SORTS = {
    "created": "created_at", "-created": "-created_at",
    "updated": "updated_at", "-updated": "-updated_at",
    "priority": "priority", "-priority": "-priority",
    "status": "status", "-status": "-status",
    "subject": "subject", "-subject": "-subject",
}


@dataclass
class TicketQuery:
    q: str = ""
    status: list[str] = field(default_factory=list)  # statuses, or ["open"] for all open
    queue: str = ""  # id, "none" or "triage"
    assignee: str = ""  # id, "me" or "none"
    client: str = ""
    priority: str = ""
    type: str = ""
    tag: str = ""
    sort: str = "-created"

    @classmethod
    def from_params(cls, params) -> TicketQuery:
        get = params.get
        status = [s for s in params.getlist("status") if s] if hasattr(params, "getlist") \
            else ([get("status")] if get("status") else [])
        sort = get("sort") or "-created"
        return cls(q=(get("q") or "").strip()[:200], status=status, queue=get("queue") or "",
                   assignee=get("assignee") or "", client=get("client") or "",
                   priority=get("priority") or "", type=get("type") or "",
                   tag=(get("tag") or "").strip(), sort=sort if sort in SORTS else "-created")


def visible_tickets(user) -> QuerySet:
    return scoped(Ticket.objects.all(), user)


def filter_tickets(user, query: TicketQuery) -> QuerySet:
    qs = visible_tickets(user).select_related("client", "queue", "assignee", "contact")
    if query.q:
        text = query.q
        cond = Q(subject__icontains=text) | Q(requester_email__icontains=text)
        ref = text.upper().removeprefix(REFERENCE_PREFIX).lstrip("0")
        if parse_id(ref) is not None:
            cond |= Q(pk=parse_id(ref))
        qs = qs.filter(cond)
    if query.status:
        wanted = set()
        for s in query.status:
            if s == "open":
                wanted |= set(OPEN_STATUSES)
            elif s in Status.values:
                wanted.add(s)
        qs = qs.filter(status__in=wanted)
    if query.queue == "none":
        qs = qs.filter(queue__isnull=True)
    elif query.queue == "triage":
        qs = qs.filter(queue__is_triage=True)
    elif query.queue:
        qs = filter_by_id(qs, "queue_id", query.queue)
    if query.assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif query.assignee == "me":
        qs = qs.filter(assignee_id=user.pk)
    elif query.assignee:
        qs = filter_by_id(qs, "assignee_id", query.assignee)
    if query.client:
        qs = filter_by_id(qs, "client_id", query.client)
    if query.priority:
        qs = qs.filter(priority=query.priority)
    if query.type:
        qs = qs.filter(type=query.type)
    if query.tag:
        qs = qs.filter(tags__contains=query.tag) if _json_contains_ok() else \
            qs.filter(tags__icontains=f'"{query.tag}"')
    return qs.order_by(SORTS[query.sort], "-id")


def _json_contains_ok() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def technicians(user) -> QuerySet:
    """Staff who can be assigned tickets, as the user may see them."""
    return User.objects.filter(is_active=True, role__in=[Role.OWNER, Role.ADMIN,
                                                         Role.TECHNICIAN, Role.DISPATCHER])


def can_work_on(technician, ticket: Ticket) -> bool:
    ids = visible_client_ids(technician)
    return ids is None or (ticket.client_id is not None and ticket.client_id in ids)


def workload(user) -> list[dict]:
    """Open tickets per technician (of the tickets `user` can see), busiest first."""
    open_qs = visible_tickets(user).filter(status__in=OPEN_STATUSES)
    counts = {row["assignee"]: row for row in open_qs.values("assignee").annotate(
        total=Count("id"), p1=Count("id", filter=Q(priority="p1")),
        waiting=Count("id", filter=Q(status__in=[Status.WAITING_CLIENT,
                                                  Status.WAITING_THIRD_PARTY])))}
    rows = []
    for tech in technicians(user).order_by("name", "email"):
        row = counts.get(tech.pk, {})
        rows.append({"user": tech, "total": row.get("total", 0), "p1": row.get("p1", 0),
                     "waiting": row.get("waiting", 0)})
    rows.sort(key=lambda r: (-r["total"], r["user"].display_name.lower()))
    unassigned = counts.get(None, {}).get("total", 0)
    return rows, unassigned


def csat_results(user) -> dict:
    answered = scoped(CsatSurvey.objects.filter(answered_at__isnull=False), user)
    per_tech = list(answered.values("technician", "technician__email", "technician__name")
                    .annotate(n=Count("id"), avg=Avg("score")).order_by("-n"))
    per_client = list(answered.values("client", "client__name")
                      .annotate(n=Count("id"), avg=Avg("score")).order_by("-n"))
    overall = answered.aggregate(n=Count("id"), avg=Avg("score"))
    return {"overall": overall, "technicians": per_tech, "clients": per_client}


def timeline(ticket: Ticket, *, public_only: bool = False) -> QuerySet:
    qs = ticket.entries.select_related("author").prefetch_related(
        "attachments", Prefetch("inbound_messages",
                                queryset=InboundMessage.objects.only("id", "entry_id", "size",
                                                                     "raw_purged_at")))
    if public_only:
        qs = qs.filter(is_public=True)
    return qs.order_by("created_at", "id")


def search_tickets(user, text: str, limit: int = 10) -> list[dict]:
    """Tickets for the global search: by reference (WK-000123, or just 123), subject or
    requester email, in every tenant the user sees (and only for roles that see tickets)."""
    from watchkeeper.core.permissions import has_capability

    text = text.strip()
    if not text or not has_capability(user, "tickets.view"):
        return []
    ref = text.upper().removeprefix(REFERENCE_PREFIX).lstrip("0")
    cond = Q(pk=int(ref)) if ref.isdigit() and len(ref) <= 18 else Q(pk__in=[])
    if len(text) >= 2:
        cond |= Q(subject__icontains=text) | Q(requester_email__icontains=text)
    rows = (visible_tickets(user).filter(cond).select_related("client")
            .order_by("-created_at", "-id")[:limit])
    return [{"type": "ticket", "id": t.pk, "name": f"{t.reference} {t.subject}",
             "client": t.client_id, "client_name": t.client.name if t.client else "",
             "detail": " ".join(filter(None, [t.get_status_display(), t.requester_email])),
             "url": f"/tickets/{t.pk}/"} for t in rows]


# --- Home pages ---------------------------------------------------------------------------

def _with_sla(qs: QuerySet) -> QuerySet:
    """Tickets annotated with their next SLA due time (the earliest unmet clock), whether a
    clock is breached, and whether one is past its warning point."""
    from django.db.models import Exists, Min, OuterRef
    from django.utils import timezone

    from .sla.models import SlaClock

    now = timezone.now()
    open_clocks = SlaClock.objects.filter(ticket=OuterRef("pk"), met_at__isnull=True)
    return qs.annotate(
        sla_due=Min("sla_clocks__due_at", filter=Q(sla_clocks__met_at__isnull=True)),
        sla_breached=Exists(open_clocks.filter(breached_at__isnull=False)),
        sla_at_risk=Exists(open_clocks.filter(breached_at__isnull=True, warning_at__lte=now)),
    )


def my_open_tickets(user, limit: int = 15) -> list[Ticket]:
    """The user's open tickets, the one whose SLA falls due first on top."""
    from django.db.models import F

    qs = _with_sla(visible_tickets(user).filter(assignee=user, status__in=OPEN_STATUSES)
                   .select_related("client"))
    return list(qs.order_by(F("sla_due").asc(nulls_last=True), "-priority", "id")[:limit])


def sla_counts(user, *, mine: bool = False) -> dict[str, int]:
    """Open tickets breached and at risk (of the user's, or of all they see)."""
    qs = visible_tickets(user).filter(status__in=OPEN_STATUSES)
    if mine:
        qs = qs.filter(assignee=user)
    qs = _with_sla(qs)
    return {"breached": qs.filter(sla_breached=True).count(),
            "at_risk": qs.filter(sla_breached=False, sla_at_risk=True).count(),
            "open": qs.count()}


def unassigned_queue(user, limit: int = 15) -> list[Ticket]:
    from django.db.models import F

    qs = _with_sla(visible_tickets(user).filter(assignee__isnull=True,
                                                status__in=OPEN_STATUSES)
                   .select_related("client"))
    return list(qs.order_by(F("sla_due").asc(nulls_last=True), "priority", "id")[:limit])


def running_timers(user) -> list:
    from .time.models import Timer

    return list(Timer.objects.filter(technician=user).select_related("ticket")
                .order_by("started_at"))


def sla_attainment(user, days: int = 30) -> dict[str, float | int | None]:
    """Of the SLA clocks met or breached in the last `days`, the share met on time."""
    from datetime import timedelta

    from django.utils import timezone

    from .sla.models import SlaClock

    since = timezone.now() - timedelta(days=days)
    clocks = scoped(SlaClock.objects.all(), user).filter(
        Q(met_at__gte=since) | Q(breached_at__gte=since))
    total = clocks.count()
    on_time = clocks.filter(met_at__isnull=False, breached_at__isnull=True).count()
    return {"total": total, "on_time": on_time,
            "percent": round(100 * on_time / total) if total else None}


def latest_billing_run():
    from .billing.models import BillingRun

    return BillingRun.objects.order_by("-period_start", "-id").first()
