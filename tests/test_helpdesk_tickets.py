"""Tickets through their actions and pages: priority from the matrix, the status workflow,
routing rules and their preview, merge, bulk changes with per-item results, CSAT, templates
validated on save, custom field versions, and what a client user may see."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import make_user
from watchkeeper.core import actions as core_actions
from watchkeeper.core.choices import Role
from watchkeeper.core.models import AuditEntry, Event
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.choices import EntryKind, Level, Source, Status
from watchkeeper.helpdesk.mailin import intake as mailin
from watchkeeper.helpdesk.models import (
    CsatSurvey,
    CustomFieldDefinition,
    InboundMessage,
    Queue,
    RoutingRule,
    Ticket,
    TicketEntry,
)
from watchkeeper.helpdesk.routing import facts, rule_matches

pytestmark = pytest.mark.django_db


def ticket(client, subject="Printer jam", **kw):
    return actions.create_ticket(actor=None, client=client, subject=subject,
                                 requester_email=kw.pop("requester_email", "pat@acme.test"),
                                 **kw)


def test_priority_follows_the_current_matrix_version(client_a, owner):
    # Given the built-in matrix, then a new version where high x high is still P1
    t1 = ticket(client_a, impact=Level.HIGH, urgency=Level.LOW)
    assert (t1.priority, t1.matrix_version) == ("p3", 1)
    matrix = {i: {u: "p2" for u in ("high", "medium", "low")} for i in ("high", "medium", "low")}
    actions.save_priority_matrix(actor=owner, matrix=matrix)

    # When a ticket is opened and another one's urgency changes
    t2 = ticket(client_a, impact=Level.LOW, urgency=Level.LOW)
    actions.change_ticket(actor=owner, ticket=t1, urgency=Level.MEDIUM)
    t1.refresh_from_db()

    # Then both use version 2
    assert (t2.priority, t2.matrix_version) == ("p2", 2)
    assert (t1.priority, t1.matrix_version) == ("p2", 2)
    # And an incomplete matrix is refused
    with pytest.raises(ValidationError):
        actions.save_priority_matrix(actor=owner, matrix={"high": {"high": "p1"}})


def test_workflow_refuses_transitions_it_does_not_allow(client_a, tech_a):
    t = ticket(client_a)
    actions.change_ticket(actor=tech_a, ticket=t, status=Status.RESOLVED)
    # Resolved may only reopen or close
    with pytest.raises(ValidationError, match="cannot go from Resolved to In progress"):
        actions.change_ticket(actor=tech_a, ticket=t, status=Status.IN_PROGRESS)
    actions.change_ticket(actor=tech_a, ticket=t, status=Status.CLOSED)
    t.refresh_from_db()
    assert t.status == Status.CLOSED and t.closed_at and t.resolved_at
    # Every change is on the timeline, in the audit log and announced
    assert t.entries.filter(kind=EntryKind.STATUS).count() == 2
    assert AuditEntry.objects.filter(object_type="helpdesk.ticket", object_id=str(t.pk),
                                     action="update").count() == 2
    assert Event.objects.filter(kind="ticket.changed", payload__id=t.pk).count() == 2
    assert Event.objects.filter(kind="ticket.created", payload__id=t.pk).count() == 1


def test_routing_rules_apply_in_order_and_preview_against_past_tickets(client_a, owner, tech_a,
                                                                        as_user):
    # Given past tickets, then a printer rule and a later VIP rule that stops evaluation
    old_printer = ticket(client_a, subject="Printer offline")
    ticket(client_a, subject="Password reset")
    printers = core_actions.create_object(actor=owner, model=Queue, name="Printers")
    actions.create_rule(actor=owner, name="Printers", position=10,
                        conditions=[{"field": "subject", "op": "contains", "value": "printer"}],
                        set_queue=printers, add_tags=["hardware"])
    actions.create_rule(actor=owner, name="VIP", position=20, stop=True,
                        conditions=[{"field": "requester_email", "op": "ends_with",
                                     "value": "@boss.test"}],
                        set_priority="p1", set_assignee=tech_a)
    actions.create_rule(actor=owner, name="Never reached", position=30,
                        conditions=[{"field": "subject", "op": "contains", "value": "printer"}],
                        add_tags=["late"])

    # When a new ticket matches both the printer and the VIP rule
    t = ticket(client_a, subject="PRINTER on fire", requester_email="ceo@boss.test")

    # Then queue, tags, priority and assignee come from the rules, and the stop held
    assert t.queue == printers and t.tags == ["hardware"]
    assert t.priority == "p1" and t.assignee == tech_a
    assert "Routing rules applied" in t.entries.get(kind=EntryKind.SYSTEM).body

    # And the rule page previews a draft against past tickets without saving it
    page = as_user(owner).post("/tickets/rules/new", {
        "name": "Draft", "c_field": ["subject"], "c_op": ["contains"],
        "c_value": ["printer"], "match": "all", "action": "preview"})
    assert page.status_code == 200
    matched = {row["id"] for row in page.context["preview"] if row["matches"]}
    assert old_printer.pk in matched and t.pk in matched and len(matched) == 2
    assert not RoutingRule.objects.filter(name="Draft").exists()
    # And saving bumps the version
    rule = RoutingRule.objects.get(name="Printers")
    actions.update_rule(actor=owner, rule=rule, add_tags=["hardware", "printer"])
    rule.refresh_from_db()
    assert rule.version == 2


def test_rule_conditions_are_validated(owner):
    with pytest.raises(ValidationError, match="unknown field"):
        actions.create_rule(actor=owner, name="Bad",
                            conditions=[{"field": "password", "op": "equals", "value": "x"}])
    with pytest.raises(ValidationError):
        actions.create_rule(actor=owner, name="Empty", conditions=[])


def test_rule_matching_on_tags_and_any(client_a):
    t = ticket(client_a, tags=["vip", "network"])
    rule = RoutingRule(match_all=False, conditions=[
        {"field": "tags", "op": "equals", "value": "VIP"},
        {"field": "subject", "op": "contains", "value": "nothing"}])
    assert rule_matches(rule, facts(t))
    rule.match_all = True
    assert not rule_matches(rule, facts(t))


def test_merge_moves_the_timeline_and_later_mail_lands_on_the_target(client_a, tech_a):
    # Given two tickets about the same problem, the duplicate opened by mail
    target = ticket(client_a, subject="Internet down")
    outcome = mailin.receive(b"From: pat@acme.test\r\nSubject: no internet\r\n"
                             b"Message-ID: <dup-1@acme.test>\r\n\r\nNothing works\r\n")
    source = outcome.ticket
    # When the duplicate is merged into the first
    actions.merge_tickets(actor=tech_a, source=source, target=target)
    source.refresh_from_db()
    # Then the source is closed, pointing at the target, which holds its mail
    assert source.merged_into == target and source.status == Status.CLOSED
    assert target.entries.filter(message_id="<dup-1@acme.test>").exists()
    assert "merged into this ticket" in target.entries.filter(kind=EntryKind.SYSTEM).last().body
    # And a reply to the duplicate's mail threads into the target
    reply = mailin.receive(b"From: pat@acme.test\r\nSubject: Re: no internet\r\n"
                           b"In-Reply-To: <dup-1@acme.test>\r\n"
                           b"Message-ID: <dup-2@acme.test>\r\n\r\nStill down\r\n")
    assert reply.kind == "replied" and reply.ticket == target
    # And merging a ticket into itself or across clients is refused
    with pytest.raises(ValidationError):
        actions.merge_tickets(actor=tech_a, source=target, target=target)


def test_a_technician_is_only_assigned_tickets_of_their_clients(client_a, client_b, tech_a,
                                                                owner):
    other = ticket(client_b)
    with pytest.raises(ValidationError, match="not assigned to the ticket.s client"):
        actions.change_ticket(actor=owner, ticket=other, assignee=tech_a)
    with pytest.raises(ValidationError, match="not assigned to the ticket.s client"):
        ticket(client_b, assignee=tech_a)
    # A routing rule naming them does not assign B's tickets to them either
    actions.create_rule(actor=owner, name="All to tech", conditions=[
        {"field": "subject", "op": "contains", "value": ""}], set_assignee=tech_a)
    assert ticket(client_b).assignee is None and ticket(client_a).assignee == tech_a


def test_merge_across_clients_is_refused(client_a, client_b, owner):
    with pytest.raises(ValidationError, match="different clients"):
        actions.merge_tickets(actor=owner, source=ticket(client_a), target=ticket(client_b))


def test_bulk_close_reports_per_ticket(client_a, tech_a, as_user):
    # Given an open ticket and a resolved one that the workflow lets close, and a new one
    t1, t2 = ticket(client_a, "One"), ticket(client_a, "Two")
    actions.change_ticket(actor=tech_a, ticket=t2, status=Status.IN_PROGRESS)
    # When a technician sets both to "waiting on client", then bulk-reopens via the page
    page = as_user(tech_a).post("/tickets/bulk", {"ids": [t1.pk, t2.pk], "op": "status",
                                                   "status": Status.OPEN})
    # Then the new one opened; the in-progress one could (workflow allows) too
    results = {r["id"]: r for r in page.context["results"]}
    assert results[t1.pk]["ok"] and results[t2.pk]["ok"]
    # And an illegal transition is reported for that ticket only
    actions.change_ticket(actor=tech_a, ticket=t1, status=Status.RESOLVED)
    page = as_user(tech_a).post("/tickets/bulk", {"ids": [t1.pk, t2.pk], "op": "status",
                                                   "status": Status.IN_PROGRESS})
    results = {r["id"]: r for r in page.context["results"]}
    assert not results[t1.pk]["ok"] and "cannot go" in results[t1.pk]["error"]
    assert results[t2.pk]["ok"]
    assert b"Refused" in page.content


def test_csat_survey_after_resolution_and_results(client_a, client_b, tech_a, owner, client,
                                                  as_user):
    # Given a ticket assigned to a technician, resolved
    t = ticket(client_a, assignee=tech_a)
    actions.add_entry(actor=tech_a, ticket=t, body="Done", public=True,
                      set_status=Status.RESOLVED)
    survey = CsatSurvey.objects.get(ticket=t)
    assert survey.technician == tech_a and survey.client == client_a
    assert "survey/?t=" in t.mails.get(kind="resolved").body
    # The token only exists in the resolution mail (stored hashed); take a second ticket's
    t2 = ticket(client_b)
    actions.change_ticket(actor=owner, ticket=t2, status=Status.RESOLVED)
    link = t2.mails.get(kind="resolved").body.split("survey/?t=")[1].split()[0]

    # When the client opens the link (no sign-in) and answers
    page = client.get(f"/survey/?t={link}")
    assert page.status_code == 200 and t2.reference.encode() in page.content
    client.post("/survey/", {"t": link, "score": "2", "comment": "Slow"})
    # Then it is recorded once; a second answer changes nothing
    client.post("/survey/", {"t": link, "score": "5"})
    answered = CsatSurvey.objects.get(ticket=t2)
    assert answered.score == 2 and answered.comment == "Slow"
    # And a wrong token is a 404 page
    assert client.get("/survey/?t=nope").status_code == 404

    # And the results page shows per client (owner sees all; tech_a not B's)
    results = as_user(owner).get("/tickets/csat/").context["results"]
    assert results["overall"]["n"] == 1
    assert [r["client__name"] for r in results["clients"]] == [client_b.name]
    results = as_user(tech_a).get("/tickets/csat/").context["results"]
    assert results["overall"]["n"] == 0


def test_notification_templates_are_validated_and_versioned(owner):
    actions.define_custom_field(actor=owner, key="site_code", label="Site code")
    tpl = actions.save_template(actor=owner, kind="created", subject="[{{ ticket.reference }}]",
                                body="Site {{ custom.site_code }} — {{ requester.name }}")
    assert tpl.version == 1 and tpl.variables == ["custom", "requester", "ticket"]
    tpl2 = actions.save_template(actor=owner, kind="created", subject="{{ ticket.subject }}",
                                 body="Hi")
    assert tpl2.version == 2 and tpl2.is_current
    for bad in ("{{ ticket.client.portal_users }}", "{{ settings.SECRET_KEY }}",
                "{% include 'base.html' %}", "{{ custom.unknown }}", "{% if x %}"):
        with pytest.raises(ValidationError):
            actions.save_template(actor=owner, kind="created", subject="s", body=bad)
    # The custom field lists the template version that used it (now superseded: none)
    actions.save_template(actor=owner, kind="replied", subject="s",
                          body="{{ custom.site_code }}")
    field = CustomFieldDefinition.objects.get(key="site_code", is_current=True)
    assert field.references == ["template:replied:v1"]


def test_custom_field_versions_and_rule_references(owner, client_a):
    actions.define_custom_field(actor=owner, key="asset", label="Asset tag")
    v2 = actions.define_custom_field(actor=owner, key="asset", label="Asset number",
                                     field_type="number")
    assert v2.version == 2
    assert CustomFieldDefinition.objects.filter(key="asset").count() == 2
    actions.create_rule(actor=owner, name="Big assets", conditions=[
        {"field": "cf.asset", "op": "starts_with", "value": "9"}], add_tags=["big"])
    v2.refresh_from_db()
    assert v2.references[0].startswith("rule:") and "Big assets" in v2.references[0]
    t = ticket(client_a, custom_fields={"asset": "912"})
    assert t.custom_fields == {"asset": 912.0} and t.tags == ["big"]
    with pytest.raises(ValidationError):
        ticket(client_a, custom_fields={"asset": "abc"})


def test_a_client_user_sees_only_own_tickets_and_only_public_entries(client_a, client_b,
                                                                     portal_b, as_user):
    # Given tickets of A and of B, B's with an internal note
    mine = ticket(client_b, "Our VPN")
    theirs = ticket(client_a, "Their secret")
    actions.add_entry(actor=make_user("t2@msp.test", Role.ADMIN), ticket=mine,
                      body="Internal: client is difficult", public=False)
    web = as_user(portal_b)

    from watchkeeper.inventory import actions as inventory_actions

    inventory_actions.create_device(actor=None, client=client_b, name="B-LAPTOP")
    inventory_actions.create_device(actor=None, client=client_a, name="A-SERVER")
    # When the client user lists and opens tickets
    listing = web.get("/portal/tickets/?show=all")
    assert mine.subject.encode() in listing.content
    assert b"Their secret" not in listing.content
    # And sees the health of their own devices only
    assert listing.context["health"]["total"] == 1
    assert [d.name for d in listing.context["health"]["devices"]] == ["B-LAPTOP"]
    detail = web.get(f"/portal/tickets/{mine.pk}/")
    assert detail.status_code == 200 and b"difficult" not in detail.content
    assert web.get(f"/portal/tickets/{theirs.pk}/").status_code == 404
    # And they cannot use the technician pages or API-less routes at all
    assert web.get("/tickets/").status_code == 403
    assert web.get(f"/tickets/{mine.pk}/").status_code == 403

    # When they submit a ticket and reply
    web.post("/portal/tickets/new", {"subject": "Printer", "description": "Jammed",
                                     "urgency": "high"})
    new = Ticket.objects.get(subject="Printer")
    assert new.client == client_b and new.source == Source.PORTAL
    web.post(f"/portal/tickets/{new.pk}/reply", {"body": "Any news?"})
    assert new.entries.filter(body="Any news?", is_public=True).exists()
    # And replying to another client's ticket is a 404 that writes nothing
    assert web.post(f"/portal/tickets/{theirs.pk}/reply", {"body": "x"}).status_code == 404
    assert not TicketEntry.objects.filter(ticket=theirs, body="x").exists()


def test_technician_pages_render_and_are_scoped(client_a, client_b, tech_a, owner, as_user):
    mine, other = ticket(client_a, "Acme issue"), ticket(client_b, "Borealis issue")
    web = as_user(tech_a)
    listing = web.get("/tickets/?status=open&sort=-priority")
    assert listing.status_code == 200
    assert b"Acme issue" in listing.content and b"Borealis issue" not in listing.content
    assert web.get(f"/tickets/{other.pk}/").status_code == 404
    page = web.get(f"/tickets/{mine.pk}/")
    assert page.status_code == 200 and b"reply-body" in page.content
    # Inline edit through the side panel, then a reply and an internal note
    web.post(f"/tickets/{mine.pk}/update", {"status": Status.IN_PROGRESS, "priority": "p2",
                                            "assignee": tech_a.pk, "tags": "a, b"})
    mine.refresh_from_db()
    assert (mine.status, mine.priority, mine.assignee, mine.tags) == (
        Status.IN_PROGRESS, "p2", tech_a, ["a", "b"])
    web.post(f"/tickets/{mine.pk}/reply", {"visibility": "note", "body": "Checked logs"})
    web.post(f"/tickets/{mine.pk}/reply", {"visibility": "public", "body": "On it"})
    note = mine.entries.get(body="Checked logs")
    assert note.kind == EntryKind.INTERNAL_NOTE and not note.is_public
    page = web.get(f"/tickets/{mine.pk}/")
    assert b'class="entry-note"' in page.content
    # "My work" shows what is assigned to me
    assert b"Acme issue" in web.get("/tickets/mine/").content
    assert b"Acme issue" in web.get("/tickets/mine/?page=1&sort=-created").content
    assert b"Acme issue" not in web.get("/tickets/mine/?status=resolved").content
    # Dispatcher view counts open tickets per technician
    rows = as_user(owner).get("/tickets/dispatch/").context["rows"]
    assert {r["user"].email: r["total"] for r in rows}[tech_a.email] == 1
    # Logging a call (as the technician again)
    web = as_user(tech_a)
    web.post("/tickets/new", {"client": client_a.pk, "subject": "Phoned in", "type": "incident",
                              "impact": "low", "urgency": "high", "source": "phone"})
    logged = Ticket.objects.get(subject="Phoned in")
    assert logged.source == Source.PHONE and logged.assignee == tech_a


def test_admin_pages_render(owner, as_user, client_a):
    mailin.receive(b"Subject: broken\r\n\r\nno sender\r\n")
    web = as_user(owner)
    for url in ("/tickets/inbound/", "/tickets/rules/", "/tickets/rules/new",
                "/tickets/canned/", "/tickets/triage/", "/tickets/csat/"):
        assert web.get(url).status_code == 200, url
    page = web.get(f"/tickets/inbound/{InboundMessage.objects.get().pk}/")
    assert page.status_code == 200 and b"no sender" in page.content


def test_settings_page_saves_versions_and_shows_template_errors(owner, as_user, client_a):
    from watchkeeper.helpdesk.models import ClientEmailDomain, NotificationTemplate

    web = as_user(owner)
    assert web.get("/tickets/settings/").status_code == 200
    # A queue, a matrix version, a custom field, a client domain
    web.post("/tickets/settings/", {"form": "queue", "name": "Projects"})
    cells = {f"m_{i}_{u}": "p4" for i in ("high", "medium", "low")
             for u in ("high", "medium", "low")}
    web.post("/tickets/settings/", {"form": "matrix", **cells})
    web.post("/tickets/settings/", {"form": "field", "key": "room", "label": "Room"})
    web.post("/tickets/settings/", {"form": "domain", "client": client_a.pk,
                                    "domain": "Acme.TEST"})
    assert Queue.objects.filter(name="Projects").exists()
    assert actions.current_matrix() == (2, {i: {u: "p4" for u in ("high", "medium", "low")}
                                           for i in ("high", "medium", "low")})
    assert CustomFieldDefinition.objects.get(key="room").version == 1
    assert ClientEmailDomain.objects.get().domain == "acme.test"
    # A template using a variable outside the allowlist is refused, with the reason shown
    page = web.post("/tickets/settings/", {"form": "template", "kind": "created",
                                           "subject": "x", "body": "{{ user.password }}"})
    assert page.status_code == 200 and b"unknown variable" in page.content
    assert not NotificationTemplate.objects.exists()
    web.post("/tickets/settings/", {"form": "template", "kind": "created",
                                    "subject": "[{{ ticket.reference }}]",
                                    "body": "Room {{ custom.room }}"})
    assert NotificationTemplate.objects.get().variables == ["custom", "ticket"]


def test_queue_page_queries_do_not_grow_with_rows(owner, as_user, client_a, tech_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    web = as_user(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert web.get("/tickets/?status=open").status_code == 200
        return len(ctx.captured_queries)

    for n in range(3):
        ticket(client_a, f"Few {n}", assignee=tech_a, tags=["x"])
    few = queries()
    for n in range(30):
        ticket(client_a, f"Many {n}", assignee=tech_a, tags=["y"])
    assert queries() == few


def test_custom_fields_and_watchers_on_the_ticket_page(owner, tech_a, as_user, client_a):
    actions.define_custom_field(actor=owner, key="room", label="Room number",
                                field_type="number")
    t = ticket(client_a, "Projector")
    web = as_user(tech_a)
    page = web.get(f"/tickets/{t.pk}/")
    assert b"Room number" in page.content and b"Nobody is watching" in page.content
    web.post(f"/tickets/{t.pk}/update", {"cf_room": "12"})
    web.post(f"/tickets/{t.pk}/watch", {"watch": "1"})
    t.refresh_from_db()
    assert t.custom_fields == {"room": 12.0} and list(t.watchers.all()) == [tech_a]
    change = t.entries.filter(kind=EntryKind.FIELDS).last()
    assert change.changes["custom_fields"] == [{}, {"room": 12.0}]
    assert tech_a.display_name.encode() in web.get(f"/tickets/{t.pk}/").content
    # An invalid value is refused with the reason and changes nothing
    web.post(f"/tickets/{t.pk}/update", {"cf_room": "twelve"})
    t.refresh_from_db()
    assert t.custom_fields == {"room": 12.0}


def test_an_unsafe_stored_template_falls_back_to_the_built_in_one(client_a):
    """Given a template saved before the sandbox refused its filters (written directly, as an
    old row would be), when a ticket notification is queued, the built-in template is sent
    instead of an empty mail."""
    from watchkeeper.helpdesk import notify
    from watchkeeper.helpdesk.models import NotificationTemplate

    NotificationTemplate.objects.create(
        kind="created", version=7, subject='{{ ticket.subject|center:"2000000000" }}',
        body="{% lorem 999999 %}", is_current=True)
    created = ticket(client_a, "Printer jammed")
    mail = notify.queue_notification(created, "created")
    assert "Printer jammed" in mail.subject and created.reference in mail.subject
    assert "We have received your request" in mail.body
    assert len(mail.subject) < 400 and len(mail.body) < 2000
