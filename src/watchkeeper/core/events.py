"""The event outbox: modules announce changes with `emit()` and react through handlers.

`emit()` writes the event and one delivery row per subscribed handler in the caller's
transaction, so an event exists exactly when its change committed. `dispatch_due()` then
delivers each row at least once: a worker claims a row with a conditional UPDATE (a lease),
runs the handler, and marks it done; a failure is retried with exponential backoff and,
after OUTBOX_MAX_ATTEMPTS, parked as a dead letter that a person can replay. A worker that
dies mid-delivery leaves a lease that expires, so another worker picks the row up: handlers
must therefore be idempotent, keyed by the event id they receive.

What may be emitted is declared in the event catalogue (`core.catalogue`, each app's
`events.py`): `emit(SomeEvent.of(obj), client=...)` stores the event's kind, schema version
and payload; a handler receives the typed event rebuilt from them, its stored row at
`event.envelope`.
"""

from __future__ import annotations

import fnmatch
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import catalogue
from .catalogue import EventData
from .choices import DeliveryStatus
from .models import Event, EventDelivery

log = logging.getLogger(__name__)

Handler = Callable[[EventData, str], None]


@dataclass(frozen=True)
class Subscription:
    name: str
    pattern: str
    func: Handler


_handlers: dict[str, Subscription] = {}
# Providers name dynamic handlers for an event (e.g. one per matching webhook endpoint).
_providers: list[Callable[[str, int | None], list[str]]] = []
# Resolvers run a dynamic handler name ("webhook:12") that is not in _handlers.
_resolvers: dict[str, Handler] = {}

# How long a claimed delivery is held before another worker may take it (a worker killed
# mid-delivery): longer than any handler runs (webhooks time out after WEBHOOK_TIMEOUT).
LEASE = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def subscribe(pattern: str, name: str | None = None) -> Callable[[Handler], Handler]:
    """Register `func(event, handler_name)` for event kinds matching `pattern` (fnmatch)."""

    def register(func: Handler) -> Handler:
        key = name or f"{func.__module__}.{func.__qualname__}"
        _handlers[key] = Subscription(key, pattern, func)
        return func

    return register


def add_provider(provider: Callable[[str, int | None], list[str]]) -> None:
    _providers.append(provider)


def add_resolver(prefix: str, func: Handler) -> None:
    _resolvers[prefix] = func


def handlers_for(kind: str, client_id: int | None) -> list[str]:
    names = [s.name for s in _handlers.values() if fnmatch.fnmatchcase(kind, s.pattern)]
    for provider in _providers:
        names.extend(provider(kind, client_id))
    return names


def _stored(event: EventData) -> tuple[str, dict, int]:
    """(kind, payload, version) of a declared event; a CatalogueError for anything else
    (a kind string, a dict, an undeclared subclass)."""
    if not isinstance(event, EventData) or not catalogue.is_declared(event.KIND) \
            or catalogue.lookup(event.KIND) is not type(event):
        raise catalogue.CatalogueError(
            f"emit() takes a declared event (see docs/development.md, 'Events'), "
            f"not {event!r}")
    return event.KIND, event.payload(), event.VERSION


def emit(event: EventData, *, client=None) -> Event:
    """Record a declared event in the current transaction and schedule its delivery after
    commit: `emit(AgentOffline.of(agent), client=agent.client_id)`."""
    kind, payload, version = _stored(event)
    if event.DIRECTED:
        raise catalogue.CatalogueError(f"{kind} is directed: use emit_directed()")
    client_id = getattr(client, "pk", client)
    event = Event.objects.create(kind=kind, version=version, client_id=client_id,
                                 payload=payload)
    names = handlers_for(kind, client_id)
    if names:
        EventDelivery.objects.bulk_create(
            [EventDelivery(event=event, handler=n, next_attempt_at=event.created_at)
             for n in names]
        )
        _kick_after_commit()
    return event


def emit_many(items, *, batch_size: int = 500) -> int:
    """Record one event per `(client, event)` in `items`, with the deliveries `emit()`
    would schedule, in one insert per batch: the events of a set-based write (one UPDATE
    of many rows). Handlers are looked up once per (kind, client)."""
    handlers: dict[tuple[str, int | None], list[str]] = {}
    rows, deliveries = [], []
    for client, declared in items:
        kind, payload, version = _stored(declared)
        if declared.DIRECTED:
            raise catalogue.CatalogueError(f"{kind} is directed: use emit_directed()")
        client_id = getattr(client, "pk", client)
        event = Event(kind=kind, version=version, client_id=client_id, payload=payload)
        rows.append(event)
        if (kind, client_id) not in handlers:  # providers may query (client's webhooks)
            handlers[(kind, client_id)] = handlers_for(kind, client_id)
        deliveries.extend(EventDelivery(event=event, handler=name,
                                        next_attempt_at=event.created_at)
                          for name in handlers[(kind, client_id)])
    Event.objects.bulk_create(rows, batch_size=batch_size)
    if deliveries:
        EventDelivery.objects.bulk_create(deliveries, batch_size=batch_size)
        _kick_after_commit()
    return len(rows)


# Directed events take a name-based id (uuid5) in this namespace: see emit_directed().
DIRECTED_NAMESPACE = uuid.UUID("5d0b8e4e-3f57-4d3c-9a57-0c7f5c8e2a61")


def emit_directed(event: EventData, *, handler: str, key: str,
                  client=None) -> Event | None:
    """Record an event for the one handler named `handler` (subscriptions and providers are
    not asked), at most once per (kind, handler, key).

    For a follow-up addressed to one recipient, e.g. a notification channel catching up on
    alerts that opened before it existed. The event's id is derived from the three, so a
    second call with the same key (a retried request, a concurrent one) inserts nothing and
    returns None: the primary key, not a read-then-write, makes it once."""
    kind, payload, version = _stored(event)
    if not event.DIRECTED:
        raise catalogue.CatalogueError(f"{kind} is broadcast: use emit(), or declare it "
                                       "directed")
    client_id = getattr(client, "pk", client)
    event_id = uuid.uuid5(DIRECTED_NAMESPACE, f"{kind}\n{handler}\n{key}")
    try:
        with transaction.atomic():
            event = Event.objects.create(id=event_id, kind=kind, version=version,
                                         client_id=client_id, payload=payload)
    except IntegrityError:
        return None
    EventDelivery.objects.create(event=event, handler=handler,
                                 next_attempt_at=event.created_at)
    _kick_after_commit()
    return event


def _kick_after_commit() -> None:
    """Enqueue one dispatch when the current transaction commits, however many events it
    emitted. A callback dropped with a rolled-back savepoint is registered again by the
    next emit, because we look at the callbacks still pending, not at a flag of our own."""
    conn = transaction.get_connection()
    pending = getattr(conn, "run_on_commit", None) or []
    if any(entry[1] is _kick_dispatcher for entry in pending):
        return
    transaction.on_commit(_kick_dispatcher)


def _kick_dispatcher() -> None:
    from .tasks import dispatch_outbox

    try:
        dispatch_outbox.enqueue()
    except Exception as exc:  # the scheduler's periodic sweep delivers it anyway
        from .processes import is_dependency_error

        log.warning("could not enqueue outbox dispatch (%s); the periodic sweep will deliver",
                    type(exc).__name__, exc_info=not is_dependency_error(exc))


def _resolve(name: str) -> Handler | None:
    sub = _handlers.get(name)
    if sub is not None:
        return sub.func
    prefix = name.split(":", 1)[0]
    return _resolvers.get(prefix)


def typed(row: Event) -> EventData:
    """What a handler receives: the declared event rebuilt from the row (a kind whose
    payload no longer matches its declaration fails here, loudly, and is retried)."""
    return catalogue.load(row)


def backoff(attempts: int) -> timedelta:
    base = min(10 * (2 ** max(attempts - 1, 0)), 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def _claim(delivery_id: int, now=None) -> bool:
    """Compare-and-set: only one worker wins the lease on a due row.

    The lease runs from the moment of the claim (not from the start of the sweep): a sweep
    longer than LEASE must not hand out leases that have already expired."""
    now = now or timezone.now()
    return bool(
        EventDelivery.objects.filter(
            Q(locked_until__isnull=True) | Q(locked_until__lt=now),
            pk=delivery_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
        ).update(locked_until=now + LEASE)
    )


def deliver_one(delivery: EventDelivery) -> bool:
    """Run one claimed delivery; True when it succeeded."""
    func = _resolve(delivery.handler)
    now = timezone.now()
    attempts = delivery.attempts + 1
    try:
        if func is None:
            raise LookupError(f"no handler named {delivery.handler!r}")
        func(typed(delivery.event), delivery.handler)
    except Exception as exc:  # any handler failure is retried, never lost
        dead = attempts >= settings.OUTBOX_MAX_ATTEMPTS
        EventDelivery.objects.filter(pk=delivery.pk).update(
            attempts=attempts,
            status=DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING,
            next_attempt_at=now + backoff(attempts),
            locked_until=None,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        log.warning("delivery %s of %s to %s failed (attempt %s)%s", delivery.pk,
                    delivery.event.kind, delivery.handler, attempts, " — dead" if dead else "")
        return False
    EventDelivery.objects.filter(pk=delivery.pk).update(
        attempts=attempts, status=DeliveryStatus.DONE, delivered_at=now, locked_until=None,
        last_error="",
    )
    return True


def dispatch_due(limit: int = 500) -> dict[str, int]:
    """Deliver every due row (one sweep query, then a claim per row)."""
    now = timezone.now()
    due = list(
        EventDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    done = failed = 0
    for delivery_id in due:
        if not _claim(delivery_id):
            continue  # another worker has it
        delivery = EventDelivery.objects.select_related("event").get(pk=delivery_id)
        if deliver_one(delivery):
            done += 1
        else:
            failed += 1
    return {"due": len(due), "delivered": done, "failed": failed}
