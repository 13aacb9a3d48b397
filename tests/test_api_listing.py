"""REST API lists: filtering, ?search=, ?ordering=, pagination, tenant scoping, and a query
count that does not grow with the number of rows."""

from __future__ import annotations

import pytest

from tests.factories import make_client
from watchkeeper.core import actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(client_a, client_b):
    """Three sites and four contacts in A, one of each in B."""
    hq = actions.create_site(actor=None, client=client_a, name="HQ", address="1 Harbour Rd")
    lab = actions.create_site(actor=None, client=client_a, name="Lab", address="9 Mill Lane")
    actions.create_site(actor=None, client=client_a, name="Annex", address="3 Harbour Rd")
    actions.create_contact(actor=None, client=client_a, site=hq, name="Ana", email="ana@a.test",
                           is_primary=True)
    actions.create_contact(actor=None, client=client_a, site=lab, name="Ben",
                           phone="+44 20 7946 0000")
    actions.create_contact(actor=None, client=client_a, name="Cy", email="cy@a.test")
    actions.create_contact(actor=None, client=client_a, site=hq, name="Di")
    depot = actions.create_site(actor=None, client=client_b, name="Depot",
                                address="1 Harbour Rd")
    actions.create_contact(actor=None, client=client_b, site=depot, name="Bo",
                           email="bo@b.test")
    return {"hq": hq, "lab": lab}


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_list_is_paginated_with_count_and_links(as_user, owner, directory):
    api = as_user(owner)

    first = api.get("/api/v1/contacts/?page_size=2&ordering=name")
    second = api.get(first.json()["next"])

    assert first.json()["count"] == 5
    assert _names(first) == ["Ana", "Ben"]
    assert _names(second) == ["Bo", "Cy"]
    assert second.json()["previous"]


def test_ordering_by_an_allowed_field_and_ignoring_an_unknown_one(as_user, owner, directory,
                                                                  client_a):
    api = as_user(owner)

    descending = api.get(f"/api/v1/sites/?client={client_a.pk}&ordering=-name")
    unknown = api.get(f"/api/v1/sites/?client={client_a.pk}&ordering=notes")

    assert _names(descending) == ["Lab", "HQ", "Annex"]
    assert _names(unknown) == ["Annex", "HQ", "Lab"]  # default order, field not allowed


def test_search_matches_name_address_email_and_phone(as_user, owner, directory):
    api = as_user(owner)

    assert _names(api.get("/api/v1/sites/?search=harbour&ordering=name")) == [
        "Annex", "Depot", "HQ"]
    assert _names(api.get("/api/v1/contacts/?search=cy@a")) == ["Cy"]
    assert _names(api.get("/api/v1/contacts/?search=7946")) == ["Ben"]


def test_filters_by_client_site_and_flag(as_user, owner, directory, client_b):
    api = as_user(owner)
    hq = directory["hq"]

    assert _names(api.get(f"/api/v1/contacts/?site={hq.pk}&ordering=name")) == ["Ana", "Di"]
    assert _names(api.get("/api/v1/contacts/?is_primary=true")) == ["Ana"]
    assert _names(api.get(f"/api/v1/sites/?client={client_b.pk}")) == ["Depot"]


def test_invalid_filter_value_is_a_400_problem(as_user, owner, directory):
    response = as_user(owner).get("/api/v1/contacts/?site=abc")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "site" in response.json()["errors"]


def test_technician_lists_only_assigned_clients(as_user, tech_a, directory, client_a, client_b):
    api = as_user(tech_a)

    clients = _names(api.get("/api/v1/clients/"))
    sites = _names(api.get("/api/v1/sites/?search=harbour"))
    b_filtered = api.get(f"/api/v1/sites/?client={client_b.pk}").json()

    assert clients == [client_a.name]
    assert sites == ["Annex", "HQ"]
    assert b_filtered["count"] == 0


@pytest.mark.parametrize("url", ["/api/v1/clients/", "/api/v1/sites/", "/api/v1/contacts/",
                                 "/api/v1/audit/", "/api/v1/events/", "/api/v1/deliveries/",
                                 "/api/v1/webhooks/"])
def test_list_query_count_does_not_grow_with_rows(as_user, owner, url,
                                                  django_assert_max_num_queries):
    # Given a few rows of everything, and the query count of a list of them
    def grow(n: int, offset: int):
        for i in range(offset, offset + n):
            client = make_client(f"Client {i}")
            site = actions.create_site(actor=owner, client=client, name=f"Site {i}")
            actions.create_contact(actor=owner, client=client, site=site, name=f"C {i}")
            actions.create_webhook(actor=owner, name=f"Hook {i}", url="https://h.test/",
                                   secret="0123456789abcdef", client=client)

    api = as_user(owner)
    grow(2, 0)
    api.get(url)  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert api.get(url).status_code == 200

    # When the data grows tenfold
    grow(18, 2)

    # Then listing it takes no more queries than before
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = api.get(url)
    assert response.status_code == 200
    assert response.json()["count"] >= 20
