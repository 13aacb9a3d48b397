"""Real-world spreadsheets arrive whole and correct (issue 10): dates and amounts in mixed
notations read per value (a column's evidence deciding, ambiguity left to a person), amounts
with their currency, rows of the wrong length reported as such, asset tags, the headers of
the usual tools' exports, duplicate keys as a decision, and a preview of every value; through
the API and the pages. A hypothesis property test writes generated assets as CSV and XLSX in
varied notations and gets exactly the same values back."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from openpyxl import Workbook

from tests.factories import make_user
from watchkeeper.core.choices import Role
from watchkeeper.inventory.choices import ImportStatus
from watchkeeper.inventory.imports import importers
from watchkeeper.inventory.models import Device, ImportRun

pytestmark = pytest.mark.django_db
JSON = "application/json"


def upload_csv(api, client, text: str, name: str = "assets.csv") -> dict:
    res = api.post("/api/v1/device-imports/",
                   {"client": client.pk, "file": SimpleUploadedFile(name, text.encode())})
    assert res.status_code == 201, res.content
    return res.json()


def map_run(api, run: dict, **extra) -> dict:
    res = api.post(f"/api/v1/device-imports/{run['id']}/mapping/",
                   {"mapping": run["mapping"], **extra}, content_type=JSON)
    assert res.status_code == 200, res.content
    return res.json()


# --- Dates --------------------------------------------------------------------------------

MIXED_DATES = """Asset Tag,Serial,Purchase Date,Warranty Expires
T-1,S1,10/25/2020,2025-10-25
T-2,S2,17.10.2019,25 Oct 2024
T-3,S3,25 Oct 2020,03.04.2026
T-4,S4,03/04/2020,Oct 25 2024
T-5,S5,2020-10-25,05/06/2027
"""


def test_mixed_date_notations_read_per_value_and_the_column_decides(as_user, owner, client_a):
    api = as_user(owner)
    run = map_run(api, upload_csv(api, client_a, MIXED_DATES))
    report = run["report"]
    # The purchase column's slash values show month/day (10/25/2020): 03/04/2020 reads
    # as 4 March; the dotted 17.10.2019 is European whatever the slash values say.
    assert report["notations"]["dates"]["purchase_date"] == {"evidence": "mdy", "used": "mdy"}
    created = {c["values"]["asset_tag"]: c["values"] for c in report["create"]}
    assert [created[f"T-{i}"]["purchase_date"] for i in range(1, 6)] == [
        "2020-10-25", "2019-10-17", "2020-10-25", "2020-03-04", "2020-10-25"]
    # The warranty column has no slash evidence: 05/06/2027 is shown for a person to decide
    assert report["ambiguous"] == [{
        "key": "value:6:warranty_end", "line": 6, "field": "warranty_end", "raw": "05/06/2027",
        "options": {"dmy": "2027-06-05", "mdy": "2027-05-06"}}]
    assert "warranty_end" not in created["T-5"]  # never guessed
    assert created["T-3"]["warranty_end"] == "2026-04-03"  # dotted: day first
    # The preview shows the raw cell beside the parsed value where they differ
    assert created["T-2"] and report["create"][1]["raw"]["purchase_date"] == "17.10.2019"

    # Applying is refused while a decision is open; a person decides, then it applies
    refused = api.post(f"/api/v1/device-imports/{run['id']}/apply/", {}, content_type=JSON)
    assert refused.status_code == 400 and "decision" in str(refused.json())
    decided = api.post(f"/api/v1/device-imports/{run['id']}/decide/",
                       {"resolutions": {"value:6:warranty_end": "dmy"}}, content_type=JSON)
    assert decided.json()["report"]["counts"]["decisions_open"] == 0
    applied = api.post(f"/api/v1/device-imports/{run['id']}/apply/", {}, content_type=JSON)
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    assert Device.objects.get(asset_tag="T-5").warranty_end == date(2027, 6, 5)
    assert Device.objects.get(asset_tag="T-4").purchase_date == date(2020, 3, 4)


def test_a_column_with_both_orders_leaves_ambiguous_values_to_a_person(owner, client_a):
    text = "Name,Purchased\na,25/10/2020\nb,10/25/2020\nc,03/04/2020\n"
    run = importers.upload(actor=owner, client=client_a, filename="x.csv", raw=text.encode())
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    assert run.report["notations"]["dates"]["purchase_date"]["evidence"] == ""
    assert [a["raw"] for a in run.report["ambiguous"]] == ["03/04/2020"]
    # A person's column-wide reading decides all of them at once
    run = importers.decide(actor=owner, run=run, resolutions={"order:purchase_date": "dmy"})
    assert run.report["ambiguous"] == []
    assert run.report["create"][2]["values"]["purchase_date"] == "2020-04-03"


# --- Amounts ------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,value,currency", [
    ("542,50 €", "542.50", "EUR"), ("1.234,56 €", "1234.56", "EUR"),
    ("$1,299.00", "1299.00", "USD"), ("CHF 1'234.50", "1234.50", "CHF"),
    ("1 234,56 EUR", "1234.56", "EUR"), ("GBP 12.5", "12.50", "GBP"), ("99", "99.00", "")])
def test_amounts_in_local_notations_keep_their_currency(owner, client_a, cell, value,
                                                        currency):
    text = f'Name,Cost\nbox,"{cell}"\n'
    run = importers.upload(actor=owner, client=client_a, filename="c.csv", raw=text.encode())
    run = importers.apply(actor=owner, run=importers.set_mapping(actor=owner, run=run,
                                                                   mapping=run.mapping))
    device = Device.objects.get(name="box")
    assert (str(device.cost), device.cost_currency) == (value, currency)


def test_a_currency_in_the_header_or_a_column_applies_and_a_contradiction_is_refused(
        owner, client_a):
    text = "Name,Cost (EUR),Currency\na,\"542,50\",\nb,10.00,EUR\nc,$5.00,EUR\n"
    run = importers.upload(actor=owner, client=client_a, filename="c.csv", raw=text.encode())
    assert run.mapping["Currency"] == "cost_currency"
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    values = {c["values"]["name"]: c["values"] for c in run.report["create"]}
    assert values["a"]["cost"] == "542.50" and values["a"]["cost_currency"] == "EUR"
    assert values["b"]["cost_currency"] == "EUR"
    [error] = run.report["errors"]
    assert error["line"] == 4 and "USD" in error["reason"] and "EUR" in error["reason"]


# --- Rows of the wrong length ---------------------------------------------------------------

def test_short_and_long_rows_are_reported_as_such_never_shifted(owner, client_a):
    text = "Name,Serial,Location\nok,S1,Hall\nshort,S2\nlong,S3,Hall,extra\ntrail,S4,Hall,,\n"
    run = importers.upload(actor=owner, client=client_a, filename="w.csv", raw=text.encode())
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    errors = {e["line"]: e["reason"] for e in run.report["errors"]}
    assert errors == {
        3: "the row has 2 fields, the header has 3: not imported (its values would land "
           "in the wrong columns)",
        4: "the row has 4 fields, the header has 3: not imported (its values would land "
           "in the wrong columns)"}
    assert sorted(c["values"]["name"] for c in run.report["create"]) == ["ok", "trail"]


# --- Asset tags and the usual exports' headers ---------------------------------------------

@pytest.mark.parametrize("headers,expected", [
    # Snipe-IT
    (["Asset Tag", "Asset Name", "Serial", "Model", "Category", "Manufacturer", "Status",
      "Location", "Checked Out To", "Purchase Date", "Purchase Cost", "Warranty Expires",
      "Notes", "MAC Address"],
     {"Asset Tag": "asset_tag", "Asset Name": "name", "Serial": "serial", "Model": "model",
      "Category": "kind", "Manufacturer": "manufacturer", "Status": "status",
      "Location": "location", "Checked Out To": "assigned_to",
      "Purchase Date": "purchase_date", "Purchase Cost": "cost",
      "Warranty Expires": "warranty_end", "Notes": "notes", "MAC Address": "mac"}),
    # Lansweeper
    (["AssetName", "AssetType", "IPAddress", "Mac", "Manufacturer", "Model", "Serialnumber",
      "OS", "Purchase date", "Warranty date", "Description"],
     {"AssetName": "name", "AssetType": "kind", "IPAddress": "ip", "Mac": "mac",
      "Manufacturer": "manufacturer", "Model": "model", "Serialnumber": "serial",
      "OS": "os_name", "Purchase date": "purchase_date", "Warranty date": "warranty_end",
      "Description": "notes"}),
    # IT Glue configurations
    (["name", "configuration_type", "configuration_status", "hostname", "primary_ip",
      "mac_address", "serial_number", "asset_tag", "manufacturer", "model",
      "operating_system", "purchased_at", "warranty_expires_at", "notes"],
     {"name": "name", "configuration_type": "kind", "configuration_status": "status",
      "hostname": "hostname", "primary_ip": "ip", "mac_address": "mac",
      "serial_number": "serial", "asset_tag": "asset_tag", "manufacturer": "manufacturer",
      "model": "model", "operating_system": "os_name", "purchased_at": "purchase_date",
      "warranty_expires_at": "warranty_end", "notes": "notes"}),
    # Hudu
    (["Name", "Asset Layout", "Primary Serial", "Primary Model", "Primary Manufacturer"],
     {"Name": "name", "Asset Layout": "kind", "Primary Serial": "serial",
      "Primary Model": "model", "Primary Manufacturer": "manufacturer"}),
    # NinjaOne
    (["Display Name", "System Name", "Serial Number", "Manufacturer", "Model", "OS Name",
      "Role", "IP Addresses", "MAC Addresses", "Warranty End Date"],
     {"Display Name": "name", "System Name": "hostname", "Serial Number": "serial",
      "Manufacturer": "manufacturer", "Model": "model", "OS Name": "os_name", "Role": "kind",
      "IP Addresses": "ip", "MAC Addresses": "mac", "Warranty End Date": "warranty_end"}),
    # Intune
    (["Device name", "OS", "OS version", "Serial number", "Manufacturer", "Model",
      "Primary user UPN", "Wi-Fi MAC", "Ethernet MAC"],
     {"Device name": "name", "OS": "os_name", "OS version": "os_version",
      "Serial number": "serial", "Manufacturer": "manufacturer", "Model": "model",
      "Primary user UPN": "assigned_to", "Ethernet MAC": "mac"}),
])
def test_headers_of_the_usual_exports_are_guessed(headers, expected):
    assert importers.guess_mapping(headers) == expected


def test_asset_tags_are_unique_per_client_searchable_and_match_on_reimport(
        as_user, owner, client_a, client_b):
    api = as_user(owner)
    made = api.post("/api/v1/devices/", {"client": client_a.pk, "name": "pc-1",
                                         "asset_tag": "MSP-0001", "cost": "10.00",
                                         "cost_currency": "EUR"}, content_type=JSON)
    assert made.status_code == 201, made.content
    assert made.json()["asset_tag"] == "MSP-0001" and made.json()["cost_currency"] == "EUR"
    again = api.post("/api/v1/devices/", {"client": client_a.pk, "name": "pc-2",
                                          "asset_tag": "MSP-0001"}, content_type=JSON)
    assert again.status_code == 400 and "asset tag" in str(again.json())
    other = api.post("/api/v1/devices/", {"client": client_b.pk, "name": "pc-b",
                                          "asset_tag": "MSP-0001"}, content_type=JSON)
    assert other.status_code == 201
    blank = [api.post("/api/v1/devices/", {"client": client_a.pk, "name": f"n{i}"},
                      content_type=JSON).status_code for i in range(2)]
    assert blank == [201, 201]  # unique only when set
    bad = api.post("/api/v1/devices/", {"client": client_a.pk, "name": "x",
                                        "cost_currency": "euro"}, content_type=JSON)
    assert bad.status_code == 400
    # Search (global and the device list) finds the tag
    found = api.get("/api/v1/search/?q=MSP-0001").json()
    assert any(r.get("name") == "pc-1" for r in str_results(found))
    assert "pc-1" in as_user(owner).get("/devices/?q=msp-0001").content.decode()
    # The device form edits it
    page = as_user(owner).get(f"/devices/{made.json()['id']}/edit").content.decode()
    assert 'name="asset_tag"' in page and 'value="MSP-0001"' in page
    # A re-import matches by asset tag
    run = map_run(api, upload_csv(api, client_a, "Asset Tag,Location\nMSP-0001,Hall 2\n"))
    [update] = run["report"]["update"]
    assert update["matched_by"] == "asset_tag" and update["changes"] == {
        "location": ["", "Hall 2"]}


def str_results(found) -> list[dict]:
    if isinstance(found, dict):
        rows = []
        for value in found.values():
            if isinstance(value, list):
                rows.extend(v for v in value if isinstance(v, dict))
            elif isinstance(value, dict):
                rows.extend(str_results(value))
        return rows
    return [r for r in found if isinstance(r, dict)]


# --- Duplicates across the whole file -------------------------------------------------------

def test_duplicate_serials_are_a_decision_even_when_the_first_row_is_refused(owner, client_a):
    text = ("Name,Serial,Purchase Date,MAC\n"
            "first,S1,not a date,\n"       # line 2: refused, shares S1
            "second,S1,2024-01-01,\n"      # line 3
            "third,S9,2024-01-01,aa:bb:cc:dd:ee:01\n"  # line 4 shares a MAC with line 5
            "fourth,S8,2024-01-01,AA-BB-CC-DD-EE-01\n")
    run = importers.upload(actor=owner, client=client_a, filename="d.csv", raw=text.encode())
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    groups = [(g["lines"], g["keys"], g["options"]) for g in run.report["duplicates"]]
    assert groups == [([2, 3], ["serial s1"], [3]),
                      ([4, 5], ["mac aa:bb:cc:dd:ee:01"], [4, 5])]
    assert run.report["create"] == []  # nothing of them goes in before a decision
    run = importers.apply(actor=owner, run=run,
                          resolutions={"dup:2": "3", "dup:4": "skip"})
    assert list(Device.objects.values_list("name", flat=True)) == ["second"]
    assert {s["line"] for s in run.report["skipped"]} == {4, 5}


# --- The wizard pages: every value, decisions, apply ------------------------------------------

def test_the_preview_page_shows_every_value_and_takes_decisions(as_user, client_a):
    tech = make_user("imp-tech@msp.test", Role.TECHNICIAN)
    tech.assigned_clients.add(client_a)
    web = as_user(tech)
    text = ("Asset Tag,Serial,Purchase Date,Cost\n"
            "T-1,S1,03/04/2020,\"542,50 €\"\n"
            "T-2,S1,2021-01-01,10\n")
    web.post(reverse("inventory_import_start"),
             {"client": client_a.pk, "file": SimpleUploadedFile("p.csv", text.encode())})
    run = ImportRun.objects.get()
    url = reverse("inventory_import", args=[run.pk])
    web.post(url, {"map-0": "asset_tag", "map-1": "serial", "map-2": "purchase_date",
                   "map-3": "cost", "date_order": ""})
    page = web.get(url).content.decode()
    assert 'id="import-ambiguous"' in page and "03/04/2020" in page
    assert "2020-04-03 (day/month)" in page and "2020-03-04 (month/day)" in page
    assert 'id="import-duplicates"' in page and "serial s1" in page
    # Decide in the page: the tag T-1 row wins, 03/04 is day/month; the preview shows values
    apply_url = reverse("inventory_import_apply", args=[run.pk])
    web.post(apply_url, {"action": "decide", "res-dup:2": "2",
                         "res-value:2:purchase_date": "dmy"})
    page = web.get(url).content.decode()
    assert 'id="import-values"' in page
    assert "542.50" in page and "← “542,50 €”" in page and "EUR" in page
    assert "2020-04-03" in page and "← “03/04/2020”" in page
    web.post(apply_url, {"action": "apply"})
    device = Device.objects.get()
    assert (device.asset_tag, device.purchase_date, device.cost, device.cost_currency) == (
        "T-1", date(2020, 4, 3), Decimal("542.50"), "EUR")
    assert ImportRun.objects.get().status == ImportStatus.APPLIED


def test_undecided_values_can_be_left_out_explicitly(owner, client_a):
    run = importers.upload(actor=owner, client=client_a, filename="u.csv",
                           raw=b"Name,Purchased\na,03/04/2020\n")
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    run = importers.apply(actor=owner, run=run, skip_undecided=True)
    device = Device.objects.get()
    assert device.purchase_date is None
    assert run.report["counts"]["ambiguous"] == 1


# --- Property: generated assets survive a sheet in any notation -----------------------------

DATE_STYLES = {
    "iso": lambda d: d.isoformat(),
    "named": lambda d: f"{d.day} {d.strftime('%b')} {d.year}",
    "dotted": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "us": lambda d: f"{d.month}/{d.day}/{d.year}",
    "eu": lambda d: f"{d.day}/{d.month}/{d.year}",
}


def _group(n: int, sep: str) -> str:
    return f"{n:,}".replace(",", sep)


AMOUNT_STYLES = {
    "en": lambda v, c: f"{c} {_group(int(v), ',')}.{_cents(v)}".strip(),
    "de": lambda v, c: f"{_group(int(v), '.')},{_cents(v)} {c}".strip(),
    "ch": lambda v, c: f"{c} {_group(int(v), chr(39))}.{_cents(v)}".strip(),
    "fr": lambda v, c: f"{_group(int(v), chr(0xa0))},{_cents(v)} {c}".strip(),
    "plain": lambda v, c: f"{v} {c}".strip(),
}
SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£"}


def _cents(v: Decimal) -> str:
    return f"{int((v % 1) * 100):02d}"


ASSETS = st.lists(st.fixed_dictionaries({
    "purchase_date": st.dates(date(1995, 1, 1), date(2035, 12, 31)),
    "warranty_end": st.dates(date(1995, 1, 1), date(2035, 12, 31)),
    "cost": st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2),
    "currency": st.sampled_from(["EUR", "USD", "CHF", "GBP", ""]),
    "symbol": st.booleans(),
}), min_size=1, max_size=8)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_generated_assets_round_trip_in_any_notation(owner, client_a, fmt):
    @hsettings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])
    @given(assets=ASSETS, date_style=st.sampled_from(list(DATE_STYLES)),
           warranty_style=st.sampled_from(list(DATE_STYLES)),
           amount_style=st.sampled_from(list(AMOUNT_STYLES)), typed=st.booleans())
    def check(assets, date_style, warranty_style, amount_style, typed):
        Device.objects.filter(client=client_a).delete()
        ImportRun.objects.filter(client=client_a).delete()
        header = ["Asset Tag", "Serial", "Purchase Date", "Warranty Expires", "Cost"]
        rows = []
        for i, a in enumerate(assets):
            code = a["currency"]
            shown = SYMBOL.get(code, code) if a["symbol"] else code
            rows.append([f"T-{i}", f"SN{i}", DATE_STYLES[date_style](a["purchase_date"]),
                         DATE_STYLES[warranty_style](a["warranty_end"]),
                         AMOUNT_STYLES[amount_style](a["cost"], shown)])
        raw = _sheet(fmt, header, rows, assets, typed)
        run = importers.upload(actor=owner, client=client_a, filename=f"gen.{fmt}", raw=raw)
        run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
        assert run.report["errors"] == []
        # What stays ambiguous is asked, never guessed; a person who knows the notation
        # answers for the column (as they would in the preview)
        orders = {"us": "mdy", "eu": "dmy"}
        resolutions = {}
        for a in run.report["ambiguous"]:
            style = date_style if a["field"] == "purchase_date" else warranty_style
            assert a["field"] in ("purchase_date", "warranty_end") and style in orders
            resolutions[f"order:{a['field']}"] = orders[style]
        run = importers.apply(actor=owner, run=run, resolutions=resolutions)
        got = {d.asset_tag: d for d in Device.objects.filter(client=client_a)}
        assert len(got) == len(assets)
        for i, a in enumerate(assets):
            d = got[f"T-{i}"]
            assert (d.serial, d.purchase_date, d.warranty_end, d.cost, d.cost_currency) == (
                f"SN{i}", a["purchase_date"], a["warranty_end"], a["cost"], a["currency"])

    check()


def _sheet(fmt: str, header: list[str], rows: list[list[str]], assets, typed: bool) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";" if any("," in r[4] for r in rows) else ",")
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue().encode()
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row, a in zip(rows, assets, strict=True):
        if typed:  # real date and number cells, the currency in the number format
            sheet.append(row[:2] + [a["purchase_date"], a["warranty_end"], float(a["cost"])])
            cell = sheet.cell(row=sheet.max_row, column=5)
            if a["currency"]:
                cell.number_format = f'#,##0.00 [${SYMBOL.get(a["currency"], a["currency"])}]'
        else:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
