"""ticket_queue: the helpdesk queue at 100,000 tickets over 50 clients — the first page, a
technician's open work sorted by priority, a search by reference, the API list, one ticket
page — as an owner who sees every client."""

from __future__ import annotations

import json

from bench.harness import BenchError, Scenario, Target
from bench.scenarios.api_dashboard import _seed_owner, _session_cookie

CLIENTS = 50
TICKETS = 100_000
THROUGH_ACTIONS = 1_000  # the rest are bulk-inserted rows of the same shape
TECHNICIANS = 8
BATCH = 5_000


def _seed_tickets(owner) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    from watchkeeper.core import accounts, actions
    from watchkeeper.core.choices import Role
    from watchkeeper.helpdesk import actions as helpdesk
    from watchkeeper.helpdesk.choices import Level, Priority, Source, Status
    from watchkeeper.helpdesk.models import Queue, Ticket, TicketStatusChange

    clients = [actions.create_client(actor=owner, name=f"Client {i:03d} Ltd")
               for i in range(1, CLIENTS + 1)]
    techs = []
    for t in range(TECHNICIANS):
        user, _ = accounts.create_user(actor=owner, email=f"tech{t}@bench.test",
                                       role=Role.TECHNICIAN, name=f"Tech {t}")
        user.assigned_clients.set(clients)
        techs.append(user)
    queues = [actions.create_object(actor=owner, model=Queue, name=n)
              for n in ("Service desk", "Projects", "Network")]
    statuses = [Status.NEW, Status.OPEN, Status.IN_PROGRESS, Status.WAITING_CLIENT,
                Status.RESOLVED, Status.CLOSED, Status.CLOSED, Status.CLOSED]
    levels = list(Level.values)
    for n in range(THROUGH_ACTIONS):
        helpdesk.create_ticket(actor=owner, client=clients[n % CLIENTS],
                               subject=f"Seeded request {n}", description="Bench ticket",
                               impact=levels[n % 3], urgency=levels[(n // 3) % 3],
                               queue=queues[n % 3], assignee=techs[n % TECHNICIANS],
                               source=Source.API, notify=False, route=False)
    start = timezone.now() - timedelta(days=365)
    made = THROUGH_ACTIONS
    while made < TICKETS:
        rows = []
        for n in range(made, min(made + BATCH, TICKETS)):
            at = start + timedelta(seconds=n * 300)
            rows.append(Ticket(
                client=clients[n % CLIENTS], subject=f"Bulk request {n}",
                requester_email=f"user{n % 500}@client{n % CLIENTS}.test",
                impact=levels[n % 3], urgency=levels[(n // 3) % 3],
                priority=list(Priority.values)[n % 4], status=statuses[n % len(statuses)],
                queue=queues[n % 3], assignee=techs[n % TECHNICIANS] if n % 5 else None,
                source=Source.EMAIL, tags=["bulk"] if n % 7 == 0 else [],
                created_at=at, updated_at=at))
        created = Ticket.objects.bulk_create(rows, batch_size=1000)
        TicketStatusChange.objects.bulk_create(
            [TicketStatusChange(ticket=t, from_status="", to_status=Status.NEW,
                                at=t.created_at) for t in created], batch_size=1000)
        made += len(rows)
    if Ticket.objects.count() != TICKETS:
        raise BenchError(f"seeded {Ticket.objects.count()} tickets, wanted {TICKETS}")
    sample = Ticket.objects.filter(subject="Seeded request 7").get()
    return {"tech": techs[3].pk, "sample": sample.pk, "reference": sample.reference}


def _expect(text: str, *needles: str) -> None:
    for needle in needles:
        if needle not in text:
            raise BenchError(f"response lacks {needle!r}")
    if 'name="password"' in text or 'name="code"' in text:
        raise BenchError("answered a sign-in form instead of the page")


class TicketQueue(Scenario):
    name = "ticket_queue"
    description = (
        f"The helpdesk queue with {TICKETS:,} tickets over {CLIENTS} clients and "
        f"{TECHNICIANS} technicians ({THROUGH_ACTIONS:,} created through the ticket action "
        f"with routing, status history, audit and outbox; the rest bulk-inserted rows of the "
        f"same shape): first page of 50, one technician's open tickets sorted by priority, a "
        f"search by reference, the API list of open tickets, and one ticket page; as an "
        f"owner. Ticket creation throughput (API, mail) is not measured here: the harness "
        f"only issues GETs."
    )

    def seed(self) -> dict:
        from watchkeeper.core import accounts
        from watchkeeper.core.choices import TokenScope

        owner = _seed_owner()
        seeded = _seed_tickets(owner)
        _, raw_token = accounts.create_token(actor=owner, user=owner, name="benchmark",
                                             scope=TokenScope.READ)
        cookie_name, session_key = _session_cookie(owner)
        return {**seeded, "token": raw_token, "cookie": f"{cookie_name}={session_key}"}

    def targets(self, seeded: dict) -> list[Target]:
        html = {"Cookie": seeded["cookie"], "Accept": "text/html"}

        def first_page(status, body):
            _expect(body.decode(errors="replace"), f"of {TICKETS}", "WK-")

        def tech_work(status, body):
            _expect(body.decode(errors="replace"), "Tech 3", "P1 critical")

        def by_reference(status, body):
            _expect(body.decode(errors="replace"), seeded["reference"], "1–1 of 1")

        def api_open(status, body):
            data = json.loads(body)
            if len(data.get("results", [])) != 50:
                raise BenchError(f"API returned {len(data.get('results', []))} tickets")

        def ticket_page(status, body):
            _expect(body.decode(errors="replace"), "Seeded request 7", "reply-body")

        return [
            Target("GET /tickets/ (first page of 50)", "/tickets/", headers=html,
                   validate=first_page),
            Target("GET /tickets/ technician's open work, sort priority",
                   f"/tickets/?assignee={seeded['tech']}&status=open&sort=priority",
                   headers=html, validate=tech_work),
            Target("GET /tickets/?q=<reference>", f"/tickets/?q={seeded['reference']}",
                   headers=html, validate=by_reference),
            Target("GET /api/v1/tickets/?status=open (token)", "/api/v1/tickets/?status=open",
                   headers={"Authorization": f"Bearer {seeded['token']}",
                            "Accept": "application/json"}, validate=api_open),
            Target("GET /tickets/<id>/ (ticket page)", f"/tickets/{seeded['sample']}/",
                   headers=html, validate=ticket_page),
        ]


SCENARIO = TicketQueue()
