"""REST API search: clients, sites and contacts by name, e-mail, phone or address, across
every tenant the user may see and no other."""

from __future__ import annotations

import pytest

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
