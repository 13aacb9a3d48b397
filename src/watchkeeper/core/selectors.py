"""Read helpers of the core app: the client scope, list queries, dashboard numbers, search.

Every tenant-owned read starts from `scoped(...)`; the client scope chip only narrows lists
further (and never search), so it is a convenience, not an access control.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Replace
from django.utils import timezone

from .choices import DeliveryStatus
from .models import AuditEntry, Client, Contact, EventDelivery, ProcessHeartbeat, Site, User
from .permissions import has_capability
from .tenancy import scoped, visible_client_ids

SCOPE_SESSION_KEY = "wk_scope_client"
SEARCH_MIN_LENGTH = 2
SEARCH_MAX_LENGTH = 200
_UNSET = object()


# --- Client scope (session) -----------------------------------------------------------

def scope_client(request) -> Client | None:
    """The client the user narrowed lists to, re-checked against what they may see.

    Cached on the request: the top bar and the list view both ask for it.
    """
    cached = getattr(request, "_wk_scope_client", _UNSET)
    if cached is not _UNSET:
        return cached
    client = None
    user = getattr(request, "user", None)
    client_id = request.session.get(SCOPE_SESSION_KEY) if hasattr(request, "session") else None
    if client_id and user is not None and user.is_authenticated:
        client = scoped(Client.objects.all(), user).filter(pk=client_id).first()
        if client is None:  # client deleted or access withdrawn: forget the stale scope
            request.session.pop(SCOPE_SESSION_KEY, None)
    request._wk_scope_client = client
    return client


def set_scope_client(request, client: Client | None) -> None:
    if client is None:
        request.session.pop(SCOPE_SESSION_KEY, None)
    else:
        request.session[SCOPE_SESSION_KEY] = client.pk
    request._wk_scope_client = client


def can_add_clients(user) -> bool:
    """Creating or deleting a client (a tenant) is for roles that see every client: a
    technician who created one would not be assigned to it and could not open it."""
    return has_capability(user, "clients.change") and visible_client_ids(user) is None


# --- Lists ----------------------------------------------------------------------------

def _child_count(model, column: str = "client") -> Coalesce:
    # A correlated subquery per counted table: two COUNT joins on the same row would
    # multiply each other (sites x contacts) and need DISTINCT over the whole join.
    sub = (model.objects.filter(**{column: OuterRef("pk")}).order_by()
           .values(column).annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(sub, output_field=IntegerField()), Value(0))


CLIENT_SORTS = {
    "name": "name",
    "timezone": "timezone",
    "sites": "site_count",
    "contacts": "contact_count",
    "created": "created_at",
    "status": "is_active",
}
CLIENT_STATUSES = ("all", "active", "inactive")


@dataclass
class ClientListParams:
    q: str = ""
    status: str = "all"
    sort: str = "name"

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def parse_client_params(data) -> ClientListParams:
    q = (data.get("q") or "").strip()[:200]
    status = data.get("status") or "all"
    if status not in CLIENT_STATUSES:
        status = "all"
    sort = data.get("sort") or "name"
    if sort.lstrip("-") not in CLIENT_SORTS:
        sort = "name"
    return ClientListParams(q=q, status=status, sort=sort)


def clients_base(user, *, scope: Client | None, q: str = "") -> QuerySet:
    """Visible clients narrowed by scope and text, before the status filter."""
    qs = scoped(Client.objects.all(), user)
    if scope is not None:
        qs = qs.filter(pk=scope.pk)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q) | Q(notes__icontains=q))
    return qs


def client_status_counts(base: QuerySet) -> dict[str, int]:
    agg = base.order_by().aggregate(
        all=Count("pk"),
        active=Count("pk", filter=Q(is_active=True)),
        inactive=Count("pk", filter=Q(is_active=False)),
    )
    return {k: agg[k] or 0 for k in CLIENT_STATUSES}


def client_list(base: QuerySet, params: ClientListParams) -> QuerySet:
    qs = base
    if params.status == "active":
        qs = qs.filter(is_active=True)
    elif params.status == "inactive":
        qs = qs.filter(is_active=False)
    column = CLIENT_SORTS[params.sort_key]
    ordering = f"-{column}" if params.descending else column
    return (qs.annotate(site_count=_child_count(Site), contact_count=_child_count(Contact))
            .order_by(ordering, "name", "pk"))


def site_list(user, *, scope: Client | None, q: str = "",
              ordering: list[str] | None = None) -> QuerySet:
    qs = scoped(Site.objects.select_related("client"), user)
    if scope is not None:
        qs = qs.filter(client=scope)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(address__icontains=q)
                       | Q(client__name__icontains=q))
    return qs.annotate(contact_count=_child_count(Contact, "site")).order_by(
        *(ordering or []), "client__name", "name", "pk")


def contact_list(user, *, scope: Client | None, q: str = "",
                 ordering: list[str] | None = None) -> QuerySet:
    qs = scoped(Contact.objects.select_related("client", "site"), user)
    if scope is not None:
        qs = qs.filter(client=scope)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(email__icontains=q) | Q(phone__icontains=q)
                       | Q(title__icontains=q) | Q(client__name__icontains=q))
    return qs.order_by(*(ordering or []), "client__name", "name", "pk")


# --- Dashboard ------------------------------------------------------------------------

@dataclass
class DashboardStats:
    clients_active: int = 0
    clients_total: int = 0
    sites: int = 0
    contacts: int = 0
    users: int | None = None
    outbox_pending: int | None = None
    dead_letters: int | None = None
    workers: list = field(default_factory=list)
    workers_recent: int | None = None


def dashboard_stats(user) -> DashboardStats:
    clients = scoped(Client.objects.all(), user).order_by().aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(is_active=True)))
    stats = DashboardStats(
        clients_active=clients["active"] or 0,
        clients_total=clients["total"] or 0,
        sites=scoped(Site.objects.all(), user).count(),
        contacts=scoped(Contact.objects.all(), user).count(),
    )
    if has_capability(user, "users.view"):
        stats.users = User.objects.filter(is_active=True).count()
    if has_capability(user, "events.view"):
        deliveries = scoped(EventDelivery.objects.all(), user).order_by().aggregate(
            pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
            dead=Count("pk", filter=Q(status=DeliveryStatus.DEAD)),
        )
        stats.outbox_pending = deliveries["pending"] or 0
        stats.dead_letters = deliveries["dead"] or 0
        stale = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
        stats.workers = list(ProcessHeartbeat.objects.order_by("role", "name")[:50])
        for hb in stats.workers:
            hb.is_recent = hb.last_seen >= stale
        stats.workers_recent = sum(1 for hb in stats.workers if hb.is_recent)
    return stats


def assigned_clients(user, limit: int = 20) -> list[Client] | None:
    """The clients a technician is assigned to (None for roles that see every client)."""
    if visible_client_ids(user) is None:
        return None
    return list(scoped(Client.objects.all(), user).order_by("-is_active", "name")[:limit])


def recent_activity(user, limit: int = 12) -> list[AuditEntry]:
    """Latest audit rows the user may see. MSP-wide rows (sign-ins, users) only for
    those who may read the audit log."""
    qs = scoped(AuditEntry.objects.select_related("client"), user,
                include_global=has_capability(user, "audit.view"))
    return list(qs.order_by("-at", "-id")[:limit])


def client_activity(user, client: Client, limit: int = 25) -> list[AuditEntry]:
    qs = scoped(AuditEntry.objects.all(), user).filter(client=client)
    return list(qs.order_by("-at", "-id")[:limit])


def object_history(user, obj, limit: int = 20) -> list[AuditEntry]:
    """The change log of one object, newest first."""
    qs = scoped(AuditEntry.objects.all(), user).filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk))
    return list(qs.order_by("-at", "-id")[:limit])


# --- Search ---------------------------------------------------------------------------

@dataclass
class SearchResults:
    query: str
    clients: list = field(default_factory=list)
    sites: list = field(default_factory=list)
    contacts: list = field(default_factory=list)
    # Groups from other modules' providers (core.search): [(provider, [result dicts])].
    groups: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return (len(self.clients) + len(self.sites) + len(self.contacts)
                + sum(len(items) for _, items in self.groups))


def normalize_search_query(query: str | None) -> str:
    """The text global search looks for: trimmed, and cut to SEARCH_MAX_LENGTH."""
    return (query or "").strip()[:SEARCH_MAX_LENGTH]


def search(user, query: str, *, limit: int = 50) -> SearchResults:
    """Clients, sites and contacts across every tenant the user may see, then what other
    modules' providers find (core.search).

    The one global search: the search page, its type-ahead and /api/v1/search/ all call
    it, so they find the same things. Deliberately ignores the client scope chip: search
    must find things everywhere.
    """
    query = normalize_search_query(query)
    results = SearchResults(query=query)
    if len(query) < SEARCH_MIN_LENGTH:
        return results
    results.clients = list(
        scoped(Client.objects.all(), user)
        .filter(Q(name__icontains=query) | Q(slug__icontains=query))
        .order_by("-is_active", "name")[:limit])
    results.sites = list(
        scoped(Site.objects.select_related("client"), user)
        .filter(Q(name__icontains=query) | Q(address__icontains=query))
        .order_by("client__name", "name")[:limit])
    contact_match = (Q(name__icontains=query) | Q(email__icontains=query)
                     | Q(phone__icontains=query) | Q(title__icontains=query))
    contacts = scoped(Contact.objects.select_related("client"), user)
    digits = _phone_digits(query)
    if digits:
        # "5550100" should find "+1 (555) 010-0" however the number was typed in.
        contacts = contacts.annotate(phone_digits=_strip_phone_punctuation("phone"))
        contact_match |= Q(phone_digits__contains=digits)
    results.contacts = list(contacts.filter(contact_match).order_by("client__name", "name")[:limit])
    from . import search as search_providers

    results.groups = search_providers.run_providers(user, query, limit)
    return results


_PHONE_PUNCTUATION = (" ", "-", "(", ")", ".", "+", "/")


def _phone_digits(query: str) -> str:
    """The digits of a query that looks like a phone number (4+ digits, nothing else but
    phone punctuation), else ''."""
    if any(ch not in _PHONE_PUNCTUATION and not ch.isdigit() for ch in query):
        return ""
    digits = "".join(ch for ch in query if ch.isdigit())
    return digits if len(digits) >= 4 else ""


def _strip_phone_punctuation(column: str):
    expr = F(column)
    for ch in _PHONE_PUNCTUATION:
        expr = Replace(expr, Value(ch), Value(""))
    return expr
