"""Issue 18's server errors, each closed as a class: ids at the edge, bodies without the
fields a serializer defaulted, Django's own refusals as problem+json, the CSV export, and a
schema that declares what the API answers (the fuzzer in .ci/api-fuzz walks the rest)."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from watchkeeper.core.converters import ID_MAX, IdConverter, parse_id
from watchkeeper.inventory.imports.importers import EXPORT_COLUMNS
from watchkeeper.inventory.models import Device

pytestmark = pytest.mark.django_db
BIG = str(ID_MAX + 1)
PROBLEM = "application/problem+json"


@pytest.mark.parametrize("value, expected", [
    ("1", 1), (str(ID_MAX), ID_MAX), (BIG, None), ("0", None), ("-1", None), ("1e3", None),
    ("²", None), ("١٢", None), (" 7 ", 7), (True, None), (12, 12), ("", None), ("9" * 40, None),
])
def test_parse_id_accepts_only_64_bit_ids(value, expected):
    assert parse_id(value) == expected


def test_the_path_converter_refuses_what_no_row_can_be():
    converter = IdConverter()
    assert converter.to_python("42") == 42
    with pytest.raises(ValueError):
        converter.to_python(BIG)


@pytest.mark.parametrize("path", [
    f"/api/v1/inbound-mail/{BIG}/raw/", "/api/v1/inbound-mail/abc/raw/",
    f"/api/v1/clients/{BIG}/", f"/api/v1/tickets/{BIG}/", "/api/v1/events/not-a-uuid/",
])
def test_impossible_ids_in_paths_are_the_404_of_a_missing_object(client, as_user, owner, path):
    as_user(owner)
    response = client.get(path)
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("query", ["client=1e30", f"site={BIG}", "assignee=-4", "queue=x",
                                   f"client={'9' * 30}"])
def test_number_filters_refuse_impossible_ids_with_a_400(client, as_user, owner, query):
    as_user(owner)
    for path in ("/api/v1/sites/", "/api/v1/audit/", "/api/v1/events/",
                 "/api/v1/deliveries/", "/api/v1/alerts/", "/api/v1/tickets/"):
        response = client.get(f"{path}?{query}")
        assert response.status_code in (200, 400), (path, response.status_code)
        assert response.status_code == 200 or response["Content-Type"] == PROBLEM


def test_bulk_alert_ids_past_64_bits_are_a_400(client, as_user, owner):
    as_user(owner)
    response = client.post("/api/v1/alerts/acknowledge/", {"ids": [ID_MAX + 1]},
                           content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert list(response.json()["errors"]) == ["ids.0"]


def test_creates_without_the_field_a_serializer_defaulted_are_400(client, as_user, owner):
    as_user(owner)
    response = client.post("/api/v1/users/", {"email": "new@msp.test"},
                           content_type="application/json")
    assert response.status_code == 400 and "role" in response.json()["errors"]
    response = client.post("/api/v1/tokens/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 400
    assert {"scope", "expires_at"} <= set(response.json()["errors"])


def test_more_than_a_thousand_form_fields_is_problem_json(client, as_user, owner):
    as_user(owner)
    body = "&".join(f"f{i}=1" for i in range(1200))
    response = client.post("/api/v1/alerts/acknowledge/", body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 400


def test_nested_errors_are_flat_lists_of_strings(client, as_user, owner):
    as_user(owner)
    response = client.post("/api/v1/scripts/", {"name": "x", "language": "powershell",
                                                "body": "echo", "parameters": [{}, {}]},
                           content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v)
               for v in errors.values()), errors


def test_device_export_with_an_impossible_filter_is_an_empty_file_not_a_cut_one(
        client, as_user, owner, client_a):
    Device.objects.create(client=client_a, name="pc-1")
    as_user(owner)
    response = client.get(reverse("devices_export") + f"?client={BIG}&site=1e30")
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == [",".join(EXPORT_COLUMNS)]
    # Without the impossible filter the device is there
    response = client.get(reverse("devices_export"))
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 2


def test_the_schema_declares_every_status_the_api_gives(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), stdout=StringIO(), stderr=StringIO())
    schema = yaml.safe_load(out.read_text())
    for path, item in schema["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert "400" in codes, (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert "409" in codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
    # Lists answer 404 for a page past the last; detail actions are plain lists
    assert "404" in schema["paths"]["/api/v1/clients/"]["get"]["responses"]
    attachments = schema["paths"]["/api/v1/tickets/{id}/attachments/"]["get"]["responses"]
    assert attachments["200"]["content"]["application/json"]["schema"]["type"] == "array"
    raw = schema["paths"]["/api/v1/inbound-mail/{id}/raw/"]["get"]["responses"]["200"]
    assert "message/rfc822" in raw["content"]
    # Creates link to the operations on what they created (the fuzzer's stateful phase)
    links = schema["paths"]["/api/v1/clients/"]["post"]["responses"]["201"]["links"]
    assert any(link["parameters"] == {"id": "$response.body#/id"} for link in links.values())
    # Path ids are 64-bit
    param = next(p for p in schema["paths"]["/api/v1/clients/{id}/"]["get"]["parameters"]
                 if p["name"] == "id")
    assert param["schema"]["maximum"] == ID_MAX
