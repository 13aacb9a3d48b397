"""The helpdesk REST API: tickets (create, filter, change through the workflow, entries,
attachments, merge, bulk), routing rules with preview, templates validated on save, the
inbound quarantine with re-process, CSAT results — all scoped to what the caller sees."""

from __future__ import annotations

import base64

import pytest

from watchkeeper.core.models import Event
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.choices import Status
from watchkeeper.helpdesk.models import InboundMessage, RoutingRule, Ticket

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_tickets_are_created_listed_and_changed_within_the_callers_clients(
        as_user, tech_a, client_a, client_b):
    api = as_user(tech_a)
    # When A's technician creates a ticket for A, for B, and for no client
    made = api.post("/api/v1/tickets/", {"client": client_a.pk, "subject": "Server slow",
                                          "impact": "high", "urgency": "high",
                                          "tags": ["perf"]}, content_type=JSON)
    for_b = api.post("/api/v1/tickets/", {"client": client_b.pk, "subject": "Sneaky"},
                     content_type=JSON)
    nobody = api.post("/api/v1/tickets/", {"subject": "Orphan"}, content_type=JSON)

    # Then only the first is accepted, with its priority from the matrix and an event
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["reference"].startswith("WK-") and body["priority"] == "p1"
    assert body["source"] == "api" and body["status"] == "new"
    assert for_b.status_code == 400 and nobody.status_code == 400
    assert not Ticket.objects.filter(subject__in=["Sneaky", "Orphan"]).exists()
    assert Event.objects.filter(kind="ticket.created", payload__id=body["id"]).exists()

    # And B's tickets are neither listed nor reachable
    theirs = actions.create_ticket(actor=None, client=client_b, subject="Borealis only")
    listed = api.get("/api/v1/tickets/?status=open").json()
    assert [t["subject"] for t in listed["results"]] == ["Server slow"]
    assert api.get(f"/api/v1/tickets/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/v1/tickets/{theirs.pk}/", {"status": "open"},
                     content_type=JSON).status_code == 404

    # When the workflow is respected or not
    url = f"/api/v1/tickets/{body['id']}/"
    assert api.patch(url, {"status": "resolved"}, content_type=JSON).status_code == 200
    refused = api.patch(url, {"status": "in_progress"}, content_type=JSON)
    assert refused.status_code == 400 and "cannot go" in refused.content.decode()
    # And search by reference
    found = api.get(f"/api/v1/tickets/?q={body['reference']}").json()
    assert [t["id"] for t in found["results"]] == [body["id"]]


def test_entries_attachments_and_merge(as_user, tech_a, client_a):
    api = as_user(tech_a)
    t1 = actions.create_ticket(actor=None, client=client_a, subject="A",
                               requester_email="pat@acme.test")
    t2 = actions.create_ticket(actor=None, client=client_a, subject="B")
    # A note and a public reply
    note = api.post(f"/api/v1/tickets/{t1.pk}/entries/", {"body": "internal", "public": False},
                    content_type=JSON)
    reply = api.post(f"/api/v1/tickets/{t1.pk}/entries/",
                     {"body": "Hello", "public": True, "status": "waiting_client"},
                     content_type=JSON)
    assert note.status_code == 201 and note.json()["kind"] == "note"
    assert reply.status_code == 201
    t1.refresh_from_db()
    assert t1.status == Status.WAITING_CLIENT and t1.first_responded_at
    timeline = api.get(f"/api/v1/tickets/{t1.pk}/entries/").json()["results"]
    assert [e["kind"] for e in timeline][-2:] == ["note", "reply"]

    # An upload by JSON, then its download
    up = api.post(f"/api/v1/tickets/{t1.pk}/attachments/", {
        "filename": "../../etc/page.svg",
        "content_base64": base64.b64encode(b"<svg onload=alert(1)></svg>").decode()},
        content_type=JSON)
    assert up.status_code == 201, up.content
    assert up.json()["filename"] == "page.svg" and up.json()["content_type"] == "text/html"
    down = api.get(f"/api/v1/ticket-attachments/{up.json()['id']}/download/")
    assert down["Content-Type"] == "application/octet-stream"
    assert down["Content-Disposition"].startswith("attachment;")

    # Merge t2 into t1
    merged = api.post(f"/api/v1/tickets/{t2.pk}/merge/", {"into": t1.pk}, content_type=JSON)
    assert merged.status_code == 200 and merged.json()["id"] == t1.pk
    t2.refresh_from_db()
    assert t2.merged_into == t1 and t2.status == Status.CLOSED


def test_bulk_reports_each_ticket(as_user, tech_a, client_a, client_b):
    api = as_user(tech_a)
    mine = actions.create_ticket(actor=None, client=client_a, subject="Mine")
    done = actions.create_ticket(actor=None, client=client_a, subject="Done")
    actions.change_ticket(actor=None, ticket=done, status=Status.RESOLVED)
    theirs = actions.create_ticket(actor=None, client=client_b, subject="Theirs")
    res = api.post("/api/v1/tickets/bulk/", {"ids": [mine.pk, done.pk, theirs.pk],
                                             "status": "in_progress"}, content_type=JSON)
    assert res.status_code == 200
    by_id = {r["id"]: r for r in res.json()["results"]}
    assert by_id[mine.pk]["ok"] and not by_id[done.pk]["ok"]
    assert by_id[theirs.pk] == {"id": theirs.pk, "ok": False, "error": "Not found."}
    theirs.refresh_from_db()
    assert theirs.status == Status.NEW


def test_routing_rules_api_with_preview(as_user, owner, tech_a, client_a):
    actions.create_ticket(actor=None, client=client_a, subject="Printer broken")
    actions.create_ticket(actor=None, client=client_a, subject="Mail down")
    api = as_user(owner)
    draft = {"name": "Printers", "conditions": [{"field": "subject", "op": "contains",
                                                 "value": "printer"}], "add_tags": ["hw"]}
    preview = api.post("/api/v1/routing-rules/preview/", draft, content_type=JSON)
    assert preview.status_code == 200
    assert preview.json()["evaluated"] == 2
    assert [m["subject"] for m in preview.json()["matched"]] == ["Printer broken"]
    assert not RoutingRule.objects.exists()
    created = api.post("/api/v1/routing-rules/", draft, content_type=JSON)
    assert created.status_code == 201 and created.json()["version"] == 1
    bad = api.post("/api/v1/routing-rules/", {**draft, "conditions": [
        {"field": "x", "op": "contains", "value": "y"}]}, content_type=JSON)
    assert bad.status_code == 400
    # A technician may read rules but not write them
    tech = as_user(tech_a)
    assert tech.get("/api/v1/routing-rules/").status_code == 200
    assert tech.post("/api/v1/routing-rules/", draft, content_type=JSON).status_code == 403


def test_templates_are_validated_when_saved(as_user, owner):
    api = as_user(owner)
    ok = api.post("/api/v1/notification-templates/", {
        "kind": "created", "subject": "[{{ ticket.reference }}] {{ ticket.subject }}",
        "body": "Hello {{ requester.name }}"}, content_type=JSON)
    assert ok.status_code == 201 and ok.json()["version"] == 1
    bad = api.post("/api/v1/notification-templates/", {
        "kind": "created", "subject": "x", "body": "{{ ticket.client.portal_users }}"},
        content_type=JSON)
    assert bad.status_code == 400 and "no attribute 'client'" in bad.content.decode()


def test_inbound_submit_quarantine_and_reprocess(as_user, owner, tech_a):
    api = as_user(owner)
    raw = b"From: <<<broken\r\nSubject: help\r\n\r\nplease\r\n"
    res = api.post("/api/v1/inbound-mail/submit/",
                   {"raw_base64": base64.b64encode(raw).decode()}, content_type=JSON)
    assert res.status_code == 202 and res.json()["outcome"] == "quarantined"
    row = InboundMessage.objects.get()
    listed = api.get("/api/v1/inbound-mail/?state=quarantined").json()["results"]
    assert [r["id"] for r in listed] == [row.pk] and "no valid sender" in listed[0]["reason"]
    assert api.get(f"/api/v1/inbound-mail/{row.pk}/raw/").content == raw
    again = api.post(f"/api/v1/inbound-mail/{row.pk}/reprocess/", {}, content_type=JSON)
    assert again.status_code == 200 and again.json()["outcome"] == "quarantined"
    # A fine message through the same door becomes a ticket
    good = api.post("/api/v1/inbound-mail/submit/", b"From: a@b.test\r\nSubject: Hi\r\n\r\nx",
                    content_type="message/rfc822")
    assert good.json()["outcome"] == "created"
    # Technicians cannot read the quarantine (tickets.admin)
    assert as_user(tech_a).get("/api/v1/inbound-mail/").status_code == 403


def test_csat_results_api(as_user, owner, client_a, tech_a):
    t = actions.create_ticket(actor=None, client=client_a, subject="x", assignee=tech_a)
    actions.change_ticket(actor=None, ticket=t, status=Status.RESOLVED)
    actions.answer_survey(survey=t.csat, score=5)
    data = as_user(owner).get("/api/v1/csat/").json()
    assert data["overall"] == {"n": 1, "avg": 5.0}
    assert data["technicians"][0]["technician"] == tech_a.pk


def test_client_mail_domains_route_senders(as_user, owner, tech_a, client_a, client_b):
    api = as_user(owner)
    made = api.post("/api/v1/client-mail-domains/", {"client": client_a.pk,
                                                     "domain": "@Acme.Example"},
                    content_type=JSON)
    assert made.status_code == 201 and made.json()["domain"] == "acme.example"
    assert api.post("/api/v1/client-mail-domains/", {"client": client_b.pk,
                                                     "domain": "acme.example"},
                    content_type=JSON).status_code == 400  # one client per domain
    from watchkeeper.helpdesk.mailin import intake as mailin

    outcome = mailin.receive(b"From: new@acme.example\r\nSubject: hi\r\n\r\nx\r\n")
    assert outcome.ticket.client == client_a
    # A contact's address wins (any case); a triage ticket given a client by hand picks up
    # the matching contact
    from watchkeeper.core import actions as core_actions

    contact = core_actions.create_contact(actor=None, client=client_b, name="Lee",
                                          email="lee@else.test")
    known = mailin.receive(b"From: LEE@else.test\r\nSubject: who\r\n\r\nx\r\n").ticket
    assert known.client == client_b and known.contact == contact
    stranger = mailin.receive(b"From: kim@nowhere.test\r\nSubject: ?\r\n\r\nx\r\n").ticket
    core_actions.create_contact(actor=None, client=client_b, name="Kim",
                                email="kim@nowhere.test")
    actions.change_ticket(actor=owner, ticket=stranger, client=client_b)
    stranger.refresh_from_db()
    assert stranger.contact.name == "Kim" and stranger.queue is None
    # A technician can read A's domains only and cannot add any
    tech = as_user(tech_a)
    assert [d["domain"] for d in tech.get("/api/v1/client-mail-domains/").json()["results"]] \
        == ["acme.example"]
    assert tech.post("/api/v1/client-mail-domains/", {"client": client_a.pk,
                                                      "domain": "x.test"},
                     content_type=JSON).status_code == 403


def test_ticket_list_queries_do_not_grow_with_rows(as_user, owner, client_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = as_user(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/v1/tickets/?status=open").status_code == 200
        return len(ctx.captured_queries)

    for n in range(2):
        actions.create_ticket(actor=None, client=client_a, subject=f"few {n}")
    few = queries()
    for n in range(20):
        actions.create_ticket(actor=None, client=client_a, subject=f"many {n}")
    assert queries() == few
