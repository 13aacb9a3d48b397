"""Global search finds tickets by reference, subject and requester email, within the
tenants the user may see and never beyond."""

from __future__ import annotations

import pytest

from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.selectors import search_tickets

pytestmark = pytest.mark.django_db


@pytest.fixture
def tickets(client_a, client_b):
    a = actions.create_ticket(actor=None, client=client_a, subject="Printer jam on floor 2",
                              requester_email="dana@acme.test", notify=False)
    b = actions.create_ticket(actor=None, client=client_b, subject="Printer jam in the depot",
                              requester_email="kim@borealis.test", notify=False)
    return a, b


def _ticket_names(api_response) -> set[str]:
    assert api_response.status_code == 200, api_response.content
    return {r["name"] for r in api_response.json()["results"] if r["type"] == "ticket"}


def test_a_reference_finds_its_ticket_with_or_without_prefix(tickets, as_user, owner):
    a, b = tickets
    http = as_user(owner)
    # When the owner searches B's reference, then its bare number
    by_ref = _ticket_names(http.get("/api/v1/search/", {"q": b.reference}))
    by_number = _ticket_names(http.get("/api/v1/search/", {"q": str(b.pk).zfill(2)}))
    # Then exactly that ticket is found, named by reference and subject
    assert by_ref == {f"{b.reference} {b.subject}"}
    assert f"{b.reference} {b.subject}" in by_number
    # And the search page links to the ticket page
    page = http.get("/search/", {"q": b.reference.lower()}).content.decode()
    assert f'href="/tickets/{b.pk}/"' in page
    assert f'href="/tickets/{a.pk}/"' not in page


def test_technician_of_a_never_finds_tickets_of_b(tickets, as_user, tech_a):
    a, b = tickets
    http = as_user(tech_a)
    # By subject both match, by reference and by requester only B's would
    assert _ticket_names(http.get("/api/v1/search/", {"q": "printer jam"})) == {
        f"{a.reference} {a.subject}"}
    assert _ticket_names(http.get("/api/v1/search/", {"q": b.reference})) == set()
    assert _ticket_names(http.get("/api/v1/search/", {"q": "kim@borealis"})) == set()
    for params in ({"q": "printer"}, {"q": b.reference}):
        page = http.get("/search/", params).content.decode()
        typeahead = http.get("/search/", params, HTTP_HX_REQUEST="true").content.decode()
        for body in (page, typeahead):
            assert f'href="/tickets/{b.pk}/"' not in body
            assert "depot" not in body
    assert f'href="/tickets/{a.pk}/"' in http.get("/search/", {"q": "printer"}).content.decode()


def test_requester_email_finds_the_ticket(tickets, owner):
    a, _ = tickets
    assert [r["id"] for r in search_tickets(owner, "dana@acme", 10)] == [a.pk]


def test_a_portal_user_gets_no_tickets_from_the_search_provider(tickets, portal_b):
    # The portal has its own ticket list; the staff search provider returns nothing
    assert search_tickets(portal_b, "printer", 10) == []
