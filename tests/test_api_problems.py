"""Every API error is RFC 9457 problem details (application/problem+json); pages outside
/api/ get HTML error pages."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from watchkeeper.core.api.views import not_found, server_error

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def test_validation_error_lists_field_errors(as_user, owner):
    api = as_user(owner)

    response = api.post("/api/v1/sites/", {"name": ""}, content_type="application/json")

    body = _assert_problem(response, 400)
    assert set(body["errors"]) == {"client", "name"}
    assert body["instance"] == "/api/v1/sites/"


def test_malformed_json_is_a_400_problem(as_user, owner):
    api = as_user(owner)

    response = api.post("/api/v1/sites/", "{not json", content_type="application/json")

    _assert_problem(response, 400)


def test_unauthenticated_is_a_401_problem(client):
    body = _assert_problem(client.get("/api/v1/sites/"), 401)
    assert body["title"] == "Not authenticated"


def test_invalid_token_is_a_401_problem(client):
    response = client.get("/api/v1/sites/", HTTP_AUTHORIZATION="Bearer wk_abc_def")

    body = _assert_problem(response, 401)
    assert body["detail"] == "Invalid API token."


def test_missing_capability_is_a_403_problem(as_user, tech_a):
    body = _assert_problem(as_user(tech_a).get("/api/v1/audit/"), 403)
    assert body["title"] == "Forbidden"


def test_unknown_object_is_a_404_problem(as_user, owner):
    _assert_problem(as_user(owner).get("/api/v1/sites/999999/"), 404)


def test_unsupported_method_is_a_405_problem_with_allow(as_user, owner):
    response = as_user(owner).delete("/api/v1/audit/")

    _assert_problem(response, 405)
    assert "GET" in response["Allow"]


def test_unknown_api_path_is_a_404_problem(as_user, owner, client):
    # Given both an anonymous and a signed-in caller
    for caller in (client, as_user(owner)):
        # When they request a path under /api/ that no route matches
        response = caller.get("/api/v1/no-such-thing/")

        # Then the answer is problem+json, not an HTML page
        body = _assert_problem(response, 404)
        assert body["instance"] == "/api/v1/no-such-thing/"


def test_unknown_page_is_an_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content


def test_server_error_handler_answers_problem_json_for_api_and_html_elsewhere():
    factory = RequestFactory()

    api = server_error(factory.get("/api/v1/clients/"))
    page = server_error(factory.get("/clients/"))

    assert api.status_code == 500 and api["Content-Type"] == PROBLEM
    assert b'"status": 500' in api.content
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in page.content


def test_not_found_handler_used_directly():
    response = not_found(RequestFactory().get("/api/v2/x"), Exception("nope"))

    assert response.status_code == 404 and response["Content-Type"] == PROBLEM
