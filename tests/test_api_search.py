"""REST API search: clients, sites and contacts by name, e-mail, title, phone (digits in any
punctuation) or address, across every tenant the user may see and no other — the same
selector as the UI's search box, so both find the same things."""

from __future__ import annotations

import pytest
from django.urls import reverse

from watchkeeper.core import actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def harbour(client_a, client_b):
    actions.create_site(actor=None, client=client_a, name="Harbour Office",
                        address="1 Quay St")
    actions.create_site(actor=None, client=client_b, name="Depot", address="7 Harbour Way")
    actions.create_contact(actor=None, client=client_a, name="Hari Bour",
                           email="hari@acme.test", phone="+1 555 0142")
    actions.create_contact(actor=None, client=client_b, name="Kim", email="kim@harbour.test")


def _found(response) -> set[tuple[str, str]]:
    assert response.status_code == 200, response.content
    return {(r["type"], r["name"]) for r in response.json()["results"]}


def test_owner_finds_matches_in_every_client_by_name_address_and_email(as_user, owner,
                                                                       harbour):
    found = _found(as_user(owner).get("/api/v1/search/?q=harbour"))

    assert found == {("site", "Harbour Office"), ("site", "Depot"), ("contact", "Kim")}


def test_search_by_phone_and_client_name(as_user, owner, harbour, client_a):
    api = as_user(owner)

    assert _found(api.get("/api/v1/search/?q=555 0142")) == {("contact", "Hari Bour")}
    assert _found(api.get("/api/v1/search/?q=acme")) == {("client", client_a.name),
                                                         ("contact", "Hari Bour")}


def test_results_carry_client_and_api_url(as_user, owner, harbour, client_b):
    results = as_user(owner).get("/api/v1/search/?q=depot").json()["results"]

    assert len(results) == 1
    row = results[0]
    assert row["client"] == client_b.pk and row["client_name"] == client_b.name
    assert row["detail"] == "7 Harbour Way"
    assert as_user(owner).get(row["url"]).json()["name"] == "Depot"


def test_technician_of_a_never_finds_b(as_user, tech_a, harbour, client_b):
    found = _found(as_user(tech_a).get("/api/v1/search/?q=harbour"))
    by_b_name = _found(as_user(tech_a).get(f"/api/v1/search/?q={client_b.name[:8]}"))

    assert found == {("site", "Harbour Office")}
    assert by_b_name == set()


def test_portal_user_cannot_search(as_user, portal_b, harbour):
    assert as_user(portal_b).get("/api/v1/search/?q=harbour").status_code == 403


def test_too_short_query_is_a_400_problem(as_user, owner):
    response = as_user(owner).get("/api/v1/search/?q=h")

    assert response.status_code == 400
    assert response.json()["errors"]["q"]


@pytest.fixture
def directors(client_a, client_b):
    a = actions.create_contact(actor=None, client=client_a, name="Ana Reyes",
                               email="ana@acme.test", phone="+1 (555) 010-0199",
                               title="Finance Director")
    b = actions.create_contact(actor=None, client=client_b, name="Bo Lind",
                               email="bo@borealis.test", phone="+1 555-010-0199",
                               title="Finance Director")
    return a, b


def _contacts(response) -> list[tuple[int, str]]:
    assert response.status_code == 200, response.content
    return sorted((r["id"], r["title"]) for r in response.json()["results"]
                  if r["type"] == "contact")


def test_finds_contacts_by_title_and_says_it(as_user, owner, directors):
    a, b = directors
    # When the owner searches part of a job title that is in no name, e-mail or phone
    found = _contacts(as_user(owner).get("/api/v1/search/", {"q": "finance dir"}))
    # Then both contacts are found, each with its title in the result
    assert found == sorted([(a.pk, "Finance Director"), (b.pk, "Finance Director")])


def test_finds_contacts_by_phone_digits_however_typed(as_user, owner, directors):
    a, b = directors
    api = as_user(owner)
    # Given numbers stored as "+1 (555) 010-0199" and "+1 555-010-0199"; when searched for
    # with other punctuation or none, both are found
    for query in ("5550100199", "555 010 0199", "(555) 0100199", "+15550100199"):
        found = _contacts(api.get("/api/v1/search/", {"q": query}))
        assert [pk for pk, _ in found] == sorted([a.pk, b.pk]), query
    # and digits that are not in either number find no contact
    assert _contacts(api.get("/api/v1/search/", {"q": "5550100198"})) == []


def test_technician_of_a_finds_by_title_and_phone_only_in_a(as_user, tech_a, directors):
    a, _b = directors
    api = as_user(tech_a)
    # When the technician of client A searches what B's contact shares with A's
    for query in ("finance director", "5550100199", "555-010-0199"):
        # Then only A's contact is found, never B's
        assert _contacts(api.get("/api/v1/search/", {"q": query})) == [
            (a.pk, "Finance Director")], query
    # And B's contact's own name and e-mail find nothing at all
    for query in ("Bo Lind", "bo@borealis"):
        assert _found(api.get("/api/v1/search/", {"q": query})) == set(), query


@pytest.mark.parametrize("query", ["harbour", "finance", "5550100199", "acme", "555 0142"])
def test_api_finds_what_the_search_page_finds(as_user, tech_a, owner, harbour, directors,
                                              query):
    for user in (owner, tech_a):
        http = as_user(user)
        # When the same text is searched on the page and in the API
        page = http.get(reverse("search"), {"q": query}).context["results"]
        api = http.get("/api/v1/search/", {"q": query}).json()["results"]
        # Then both list the same clients, sites and contacts
        on_page = ({("client", c.pk) for c in page.clients} | {("site", s.pk) for s in page.sites}
                   | {("contact", c.pk) for c in page.contacts})
        in_api = {(r["type"], r["id"]) for r in api
                  if r["type"] in ("client", "site", "contact")}
        assert in_api == on_page and on_page, (user, query)


def test_long_query_is_searched_up_to_200_characters_and_echoed(as_user, owner, harbour):
    # Given a query of 250 characters starting with a site's address
    q = "7 Harbour Way" + "x" * 237
    # When it is searched, the response names the 200 characters that were searched
    body = as_user(owner).get("/api/v1/search/", {"q": q}).json()
    assert body["query"] == q[:200]
    assert body["results"] == []


def test_non_contact_results_have_an_empty_title(as_user, owner, harbour):
    results = as_user(owner).get("/api/v1/search/", {"q": "depot"}).json()["results"]
    assert [(r["type"], r["title"]) for r in results] == [("site", "")]
