"""The OpenAPI 3 schema at /api/v1/schema validates without warnings, documents token auth,
and the interactive docs are served from our own static files only."""

from __future__ import annotations

import re
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_valid_and_without_warnings(tmp_path):
    # When the schema is generated with validation, failing on any warning
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out),
                 stdout=StringIO(), stderr=StringIO())

    # Then it is OpenAPI 3 with the core resources and the bearer token scheme
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    for route in ("/api/v1/clients/", "/api/v1/sites/{id}/", "/api/v1/contacts/",
                  "/api/v1/audit/", "/api/v1/events/", "/api/v1/deliveries/{id}/replay/",
                  "/api/v1/webhooks/{webhook_pk}/deliveries/", "/api/v1/search/"):
        assert route in schema["paths"], route
    scheme = schema["components"]["securitySchemes"]["apiToken"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    site_ops = schema["paths"]["/api/v1/sites/"]["get"]
    assert {"apiToken": []} in site_ops["security"]


def test_error_responses_are_documented_as_problem_details(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), stdout=StringIO(), stderr=StringIO())
    schema = yaml.safe_load(out.read_text())
    problem_ref = {"$ref": "#/components/schemas/Problem"}

    detail = schema["paths"]["/api/v1/sites/{id}/"]
    for method, codes in {"get": {"401", "403", "404"},
                          "patch": {"400", "401", "403", "404"}}.items():
        responses = detail[method]["responses"]
        assert codes <= set(responses), (method, set(responses))
        for code in codes:
            assert responses[code]["content"]["application/problem+json"]["schema"] == \
                problem_ref
    assert {"type", "title", "status", "detail"} <= set(
        schema["components"]["schemas"]["Problem"]["required"])


def test_webhook_secret_is_write_only_in_the_schema(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), stdout=StringIO(), stderr=StringIO())
    components = yaml.safe_load(out.read_text())["components"]["schemas"]

    assert components["Webhook"]["properties"]["secret"]["writeOnly"] is True
    assert components["WebhookCreated"]["properties"]["secret"]["readOnly"] is True


def test_schema_endpoint_serves_openapi(client):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Watchkeeper API"


def test_docs_reference_no_external_host(client):
    # When the interactive docs page is fetched
    response = client.get("/api/v1/docs")

    # Then it loads Swagger UI from our static files and nothing from another host
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""["'](https?://[^"']+)["']""", html)
    assert urls, "the docs page references no assets at all"
    external = [u for u in urls if u.startswith(("http://", "https://", "//"))
                and not u.startswith(("http://testserver", "https://testserver"))]
    assert not external, external
    assert any("/static/drf_spectacular_sidecar/" in u for u in urls)
