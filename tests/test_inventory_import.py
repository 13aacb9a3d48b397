"""Spreadsheet import: CSV and XLSX, column mapping, dates, matching, bad rows reported with
line and reason while good rows go in, conflicts with agent facts listed and decided."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook

from watchkeeper.core.models import Contact, Site
from watchkeeper.inventory import services
from watchkeeper.inventory.choices import ImportStatus
from watchkeeper.inventory.imports import importers
from watchkeeper.inventory.models import Device, FieldConflict, FieldProvenance, ImportRun

pytestmark = pytest.mark.django_db


def csv_bytes(text: str) -> bytes:
    return text.strip().encode() + b"\n"


@pytest.mark.parametrize("text,order,expected", [
    ("2024-03-12", "dmy", date(2024, 3, 12)),
    ("12/03/2024", "dmy", date(2024, 3, 12)),
    ("03/12/2024", "mdy", date(2024, 3, 12)),
    ("12.03.24", "dmy", date(2024, 3, 12)),
    ("12 Mar 2024", "dmy", date(2024, 3, 12)),
    ("12-Mar-2024", "dmy", date(2024, 3, 12)),
    ("March 12, 2024", "dmy", date(2024, 3, 12)),
    ("45363", "dmy", date(2024, 3, 12)),
])
def test_dates_in_common_formats(text, order, expected):
    assert importers.parse_date(text, order) == expected


@pytest.mark.parametrize("cost,expected", [("1,299.00", "1299.00"), ("€ 50", "50.00"),
                                           ("12.345,5", "12345.50"), ("1e30", None),
                                           ("-5", None), ("abc", None),
                                           ("1299 EUR", "1299.00"), ("USD 5", "5.00"),
                                           ("12.3456", None)])
def test_costs_are_parsed_or_refused(cost, expected):
    if expected is None:
        with pytest.raises(ValueError, match="cost"):
            importers.clean_row({"name": "x", "cost": cost})
    else:
        values, pending = importers.clean_row({"name": "x", "cost": cost})
        assert str(values["cost"]) == expected and pending == []


def test_a_cost_that_reads_two_ways_waits_for_a_decision_and_is_never_rounded():
    values, pending = importers.clean_row({"name": "x", "cost": "12.345"}, line=4)
    assert "cost" not in values
    assert pending == [{"key": "value:4:cost", "line": 4, "field": "cost", "raw": "12.345",
                        "options": {"thousands": "12345", "decimal": "12.345"}}]
    # Read as thousands by a person: written; read as three decimals: refused, not rounded
    ctx = importers.Context(resolutions={"value:4:cost": "thousands"})
    assert str(importers.clean_row({"name": "x", "cost": "12.345"}, ctx, 4)[0]["cost"]) \
        == "12345.00"
    with pytest.raises(ValueError, match="more than two decimals"):
        importers.clean_row({"name": "x", "cost": "12.345"},
                            importers.Context(marks={"cost": "."}), 4)


@pytest.mark.parametrize("text", ["2024", "31/02/2024", "next tuesday", "13/13/2024"])
def test_bad_dates_are_refused(text):
    with pytest.raises(ValueError):
        importers.parse_date(text, "dmy")


def test_mapping_is_guessed_from_header_names():
    mapping = importers.guess_mapping(["Asset Name", "Serial Number", "MAC Address", "IP",
                                       "Warranty Expiry", "Purchase Date", "Assigned To",
                                       "Colour"])
    assert mapping == {"Asset Name": "name", "Serial Number": "serial", "MAC Address": "mac",
                       "IP": "ip", "Warranty Expiry": "warranty_end",
                       "Purchase Date": "purchase_date", "Assigned To": "assigned_to"}


def test_csv_bad_rows_reported_while_good_rows_go_in(owner, client_a):
    Site.objects.create(client=client_a, name="HQ")
    Contact.objects.create(client=client_a, name="Ann Lee", email="ann@acme.test")
    raw = csv_bytes("""
Asset Name;Serial Number;Type;Site;Purchase Date;Cost;Assigned To;MAC Address
pc-1;S1;Desktop;HQ;12/03/2024;"1,299.00";ann@acme.test;aa:bb:cc:00:00:01
pc-2;S2;Laptop;Nowhere;01/01/2023;10;;
pc-3;S3;Toaster;HQ;;;;
pc-4;S4;laptop;HQ;31/02/2024;;;
;;;;;;;
pc-5;S1;server;HQ;;;;
pc-6;S6;vm;;;;;zz
pc-7;S7;vm;hq;2023-05-06;€ 50;Ann Lee;
""")
    run = importers.upload(actor=owner, client=client_a, filename="assets.csv", raw=raw)
    run = importers.set_mapping(actor=owner, run=run, mapping={
        **run.mapping, "Type": "kind", "Site": "site", "Cost": "cost"}, date_order="dmy")
    errors = {e["line"]: e["reason"] for e in run.report["errors"]}
    assert set(errors) == {3, 4, 5, 8}
    assert "site" in errors[3] and "Nowhere" in errors[3]
    assert "kind" in errors[4]
    assert "purchase_date" in errors[5]
    assert "mac" in errors[8]
    # Lines 2 and 7 share serial S1: a decision, not "the first row wins"
    [dup] = run.report["duplicates"]
    assert (dup["lines"], dup["keys"], dup["chosen"]) == ([2, 7], ["serial s1"], None)
    with pytest.raises(ValidationError, match="wait for a decision"):
        importers.apply(actor=owner, run=run)
    run = importers.apply(actor=owner, run=run, resolutions={dup["key"]: "2"})
    assert run.status == ImportStatus.APPLIED
    assert run.report["counts"]["created"] == 2 and run.report["counts"]["errors"] == 4
    assert [s["line"] for s in run.report["skipped"]] == [7]
    pc1 = Device.objects.get(name="pc-1")
    assert (pc1.kind, pc1.purchase_date, str(pc1.cost)) == ("workstation", date(2024, 3, 12),
                                                            "1299.00")
    assert pc1.assigned_contact.name == "Ann Lee" and pc1.site.name == "HQ"
    assert pc1.primary_mac == "aa:bb:cc:00:00:01"
    assert FieldProvenance.objects.get(device=pc1, field="serial").source_kind == "import"
    assert Device.objects.get(name="pc-7").site.name == "HQ"
    # the run is kept with its report
    assert ImportRun.objects.get(pk=run.pk).report["errors"][0]["line"] == 3


def test_xlsx_with_excel_dates_and_serials(owner, client_a):
    book = Workbook()
    sheet = book.active
    sheet.append(["Hostname", "Serial", "Warranty", "End of life", "Status"])
    sheet.append(["srv-1", "X-1", datetime(2026, 1, 31), 45363, "In use"])
    sheet.append(["srv-2", 12345, "12 Mar 2027", None, "spare"])
    buffer = io.BytesIO()
    book.save(buffer)
    run = importers.upload(actor=owner, client=client_a, filename="assets.xlsx",
                           raw=buffer.getvalue())
    assert run.mapping == {"Hostname": "hostname", "Serial": "serial",
                           "Warranty": "warranty_end", "End of life": "end_of_support",
                           "Status": "status"}
    run = importers.apply(actor=owner, run=importers.set_mapping(actor=owner, run=run,
                                                                   mapping=run.mapping))
    assert run.report["counts"]["created"] == 2, run.report["errors"]
    srv1 = Device.objects.get(hostname="srv-1")
    assert srv1.name == "srv-1"  # the hostname names a device with no name column
    assert (srv1.warranty_end, srv1.end_of_support, srv1.status) == (
        date(2026, 1, 31), date(2024, 3, 12), "deployed")
    srv2 = Device.objects.get(hostname="srv-2")
    assert (srv2.serial, srv2.status, srv2.warranty_end) == ("12345", "in_stock",
                                                             date(2027, 3, 12))


def test_matching_updates_and_agent_conflicts_are_listed_not_overwritten(owner, client_a):
    # given a device whose serial and model an agent reported, and one known by hostname
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="ws-9", agent_ref="ag")
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="ag", observed_at=timezone.now(),
        sections={"system": {"serial": "AG-SERIAL", "model": "Latitude 5440",
                             "hostname": "ws-9"}})
    other = Device.objects.create(client=client_a, name="printer", hostname="prn-1")
    raw = csv_bytes("""
hostname,serial,model,location,warranty_end
ws-9,SHEET-SERIAL,Latitude 5440,Room 1,2027-01-01
prn-1,,,Hall,
ws-new,NEW-1,,,
""")
    run = importers.upload(actor=owner, client=client_a, filename="a.csv", raw=raw)
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    # then the preview lists the serial conflict, the updates and the new device
    assert [(c["device"], c["field"], c["current"], c["proposed"])
            for c in run.report["conflicts"]] == [(dev.pk, "serial", "AG-SERIAL",
                                                   "SHEET-SERIAL")]
    assert run.report["counts"] == {"create": 1, "update": 2, "errors": 0, "conflicts": 1,
                                    "unchanged": 0, "skipped": 0, "ambiguous": 0,
                                    "duplicates_open": 0, "decisions_open": 0}
    matched = {u["device"]: u for u in run.report["update"]}
    assert matched[dev.pk]["matched_by"] == "hostname"
    assert matched[other.pk]["changes"] == {"location": ["", "Hall"]}
    # when applied without a decision, the agent value stays and a conflict waits
    run = importers.apply(actor=owner, run=run)
    dev.refresh_from_db()
    other.refresh_from_db()
    assert dev.serial == "AG-SERIAL" and dev.location == "Room 1"
    assert dev.warranty_end == date(2027, 1, 1) and other.location == "Hall"
    conflict = FieldConflict.objects.get(device=dev, field="serial", status="open")
    assert (conflict.proposed_value, conflict.proposed_source) == ("SHEET-SERIAL", "import")
    assert Device.objects.filter(client=client_a, serial="NEW-1").exists()


def test_conflict_decided_at_apply_takes_the_file_value(owner, client_a):
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="ws-1", agent_ref="ag")
    services.apply_agent_inventory(device_id=dev.pk, agent_ref="ag",
                                   observed_at=timezone.now(),
                                   sections={"system": {"model": "Agent model"}})
    run = importers.upload(actor=owner, client=client_a, filename="a.csv",
                           raw=csv_bytes("hostname,model\nws-1,Sheet model"))
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    importers.apply(actor=owner, run=run, decisions={f"{dev.pk}:model": "take"})
    dev.refresh_from_db()
    assert dev.model == "Sheet model"
    assert not FieldConflict.objects.filter(device=dev).exists()


def test_export_reimports_as_matches_without_changes(as_user, owner, client_a):
    site = Site.objects.create(client=client_a, name="HQ")
    for i in range(3):
        Device.objects.create(client=client_a, site=site, name=f"d{i}", serial=f"S{i}",
                              kind="laptop", warranty_end=date(2027, 1, i + 1))
    web = as_user(owner)
    raw = b"".join(web.get(reverse("devices_export")).streaming_content)
    run = importers.upload(actor=owner, client=client_a, filename="export.csv", raw=raw)
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    assert run.report["counts"]["update"] == 3 and run.report["counts"]["unchanged"] == 3
    assert run.report["counts"]["create"] == 0 and not run.report["errors"]


def test_wizard_pages_upload_map_preview_apply(as_user, tech_a, client_a):
    web = as_user(tech_a)
    upload = SimpleUploadedFile("w.csv", csv_bytes("Name,Serial,Purchase date\n"
                                                   "w1,WS1,03/04/2024\nw2,WS2,bad"))
    response = web.post(reverse("inventory_import_start"),
                        {"client": client_a.pk, "file": upload})
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("inventory_import",
                                                                   args=[run.pk])
    page = web.get(response.url).content.decode()
    assert 'value="purchase_date" selected' in page
    web.post(response.url, {"map-0": "name", "map-1": "serial", "map-2": "purchase_date",
                            "date_order": "mdy"})
    page = web.get(response.url).content.decode()
    assert "bad" in page and "import-errors" in page
    web.post(reverse("inventory_import_apply", args=[run.pk]))
    assert Device.objects.get(serial="WS1").purchase_date == date(2024, 3, 4)
    assert not Device.objects.filter(serial="WS2").exists()


def test_an_import_of_another_tenant_is_not_found(as_user, tech_a, owner, client_b):
    run = importers.upload(actor=owner, client=client_b, filename="b.csv",
                           raw=csv_bytes("name\nb1"))
    web = as_user(tech_a)
    assert web.get(reverse("inventory_import", args=[run.pk])).status_code == 404
    assert web.post(reverse("inventory_import_apply", args=[run.pk])).status_code == 404


def test_unreadable_files_are_refused_with_a_reason(owner, client_a):
    with pytest.raises(importers.ImportError_):
        importers.upload(actor=owner, client=client_a, filename="x.xlsx", raw=b"PK\x03\x04junk")
    with pytest.raises(importers.ImportError_):
        importers.upload(actor=owner, client=client_a, filename="x.csv", raw=b"")


def test_export_neutralises_formulas_and_reimports_them_unchanged(as_user, owner, client_a):
    # Given a device whose agent-reported name is a spreadsheet formula
    Device.objects.create(client=client_a, name='=HYPERLINK("http://x.test","open")',
                          serial="-S9", kind="laptop")
    web = as_user(owner)
    # When it is exported
    raw = b"".join(web.get(reverse("devices_export")).streaming_content)
    text = raw.decode()
    # Then no cell starts with a formula character
    assert "'=HYPERLINK" in text and "'-S9" in text
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    # And re-importing it matches the device without changing its name or serial
    run = importers.upload(actor=owner, client=client_a, filename="export.csv", raw=raw)
    run = importers.set_mapping(actor=owner, run=run, mapping=run.mapping)
    assert run.report["counts"]["unchanged"] == 1 and run.report["counts"]["create"] == 0
