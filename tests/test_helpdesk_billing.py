"""Contracts and billing runs: device counts match the inventory, per-user counts, prepaid
block burn-down and overage, time and materials, approval locks the run and its time,
a new run supersedes, and the CSV / JSON exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from freezegun import freeze_time

from watchkeeper.core import actions as core_actions
from watchkeeper.core.models import AuditEntry
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.billing import actions as billing
from watchkeeper.helpdesk.billing import contracts
from watchkeeper.helpdesk.billing.choices import ContractKind, LineKind, RunStatus
from watchkeeper.helpdesk.models import BillingLine, TimeEntry
from watchkeeper.helpdesk.time import actions as timeentries
from watchkeeper.inventory import actions as inventory
from watchkeeper.inventory.selectors import DeviceQuery, filter_devices

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote(owner):
    return timeentries.save_work_type(actor=owner, name="Remote support",
                                      default_rate=Decimal("90"))


@pytest.fixture
def onsite(owner):
    return timeentries.save_work_type(actor=owner, name="On-site", default_rate=Decimal("120"))


def ticket_for(client, tech, subject="Work"):
    return actions.create_ticket(actor=tech, subject=subject, client=client, notify=False)


def lines_of(run, client=None, kind=None):
    qs = BillingLine.objects.filter(run=run)
    if client is not None:
        qs = qs.filter(client=client)
    if kind is not None:
        qs = qs.filter(kind=kind)
    return list(qs)


@freeze_time("2025-08-03 10:00:00")
def test_device_count_matches_the_inventory(owner, client_a, client_b):
    # Given client A's devices created through the inventory: 3 deployed workstations,
    # 1 deployed server, 1 in stock and 1 retired; and a deployed device of client B
    for i in range(3):
        inventory.create_device(actor=owner, client=client_a, name=f"WS-{i}",
                                kind="workstation")
    inventory.create_device(actor=owner, client=client_a, name="SRV-1", kind="server")
    inventory.create_device(actor=owner, client=client_a, name="Spare", kind="laptop",
                            status="in_stock")
    old = inventory.create_device(actor=owner, client=client_a, name="Old", kind="laptop")
    inventory.update_device(actor=owner, device=old, status="retired")
    inventory.create_device(actor=owner, client=client_b, name="B-1", kind="workstation")
    all_kinds = contracts.create_contract(
        actor=owner, client=client_a, name="Managed", kind=ContractKind.PER_DEVICE,
        starts_on=date(2025, 1, 1), unit_price=Decimal("25"))
    servers = contracts.create_contract(
        actor=owner, client=client_a, name="Servers", kind=ContractKind.PER_DEVICE,
        starts_on=date(2025, 1, 1), unit_price=Decimal("80"), device_kinds=["server"])

    # When the July run is computed
    run = billing.create_run(actor=owner, period="2025-07")

    # Then the per-device line counts exactly the inventory's deployed devices of A
    inventory_ids = {d.pk for d in filter_devices(
        owner, DeviceQuery(client=str(client_a.pk), status="deployed"))}
    managed = lines_of(run, client_a, LineKind.DEVICES)
    by_contract = {line.contract_id: line for line in managed}
    assert {d["id"] for d in by_contract[all_kinds.pk].evidence["devices"]} == inventory_ids
    assert by_contract[all_kinds.pk].quantity == len(inventory_ids) == 4
    assert by_contract[all_kinds.pk].amount == Decimal("100.00")
    # and the server contract counts servers only
    assert [d["name"] for d in by_contract[servers.pk].evidence["devices"]] == ["SRV-1"]
    assert by_contract[servers.pk].amount == Decimal("80.00")
    # and client B, with no contract and no time, has no lines
    assert lines_of(run, client_b) == []
    assert run.total == Decimal("180.00")


@freeze_time("2025-08-03 10:00:00")
def test_per_user_contract_counts_contacts_flagged_as_users(owner, client_a):
    for name, is_user in (("Ann", True), ("Bob", True), ("Accountant", False)):
        core_actions.create_contact(actor=owner, client=client_a, name=name, is_user=is_user)
    contracts.create_contract(actor=owner, client=client_a, name="Per user",
                              kind=ContractKind.PER_USER, starts_on=date(2025, 7, 15),
                              unit_price=Decimal("12.50"))

    run = billing.create_run(actor=owner, period="2025-07")

    [line] = lines_of(run, client_a, LineKind.USERS)
    assert line.quantity == 2 and line.amount == Decimal("25.00")
    assert [u["name"] for u in line.evidence["users"]] == ["Ann", "Bob"]


@freeze_time("2025-08-03 10:00:00")
def test_prepaid_block_burns_down_and_bills_overage(owner, client_a, tech_a, remote):
    # Given a 10-hour block (overage 100/h) and 4 h billed in June by an approved run
    contracts.create_contract(actor=owner, client=client_a, name="Block", hours=Decimal("10"),
                              kind=ContractKind.PREPAID, starts_on=date(2025, 6, 1),
                              overage_rate=Decimal("100"))
    ticket = ticket_for(client_a, tech_a)
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=240, work_type=remote,
                         date=date(2025, 6, 20))
    june = billing.approve_run(actor=owner, run=billing.create_run(actor=owner,
                                                                   period="2025-06"))
    [june_line] = lines_of(june, client_a, LineKind.PREPAID_USED)
    assert june_line.quantity == Decimal("4.00") and june_line.amount == 0

    # When July has 5 h and 2 h of billable time and 1 h not billable
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=300, work_type=remote,
                         date=date(2025, 7, 2))
    late = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=120, work_type=remote,
                                date=date(2025, 7, 30))
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=60, work_type=remote,
                         date=date(2025, 7, 31), billable=False)
    run = billing.create_run(actor=owner, period="2025-07")

    # Then 6 h of the block are used this month (leaving 0), 1 h is overage at 100
    [used] = lines_of(run, client_a, LineKind.PREPAID_USED)
    [beyond] = lines_of(run, client_a, LineKind.PREPAID_OVERAGE)
    assert used.quantity == Decimal("6.00") and used.evidence["remaining_hours"] == "0.00"
    assert used.evidence["used_before_hours"] == "4.00"
    assert beyond.quantity == Decimal("1.00") and beyond.amount == Decimal("100.00")
    # and the entry that crossed the block is split between the two lines, by minutes
    assert [e["minutes"] for e in used.evidence["time_entries"]] == [300, 60]
    assert beyond.evidence["time_entries"] == [
        {**beyond.evidence["time_entries"][0], "id": late.pk, "minutes": 60}]
    # and the live burn-down agrees
    block = used.contract
    assert contracts.burn_down(block)["used"] == Decimal("11.00")
    assert contracts.burn_down(block)["remaining"] == 0
    assert contracts.burn_down(block)["overage"] == Decimal("1.00")


@freeze_time("2025-08-03 10:00:00")
def test_time_and_materials_rates_per_work_type(owner, client_a, tech_a, remote, onsite):
    # Given a T&M contract with its own on-site rate
    contracts.create_contract(actor=owner, client=client_a, name="T&M",
                              kind=ContractKind.TIME_MATERIALS, starts_on=date(2025, 1, 1),
                              rates={str(onsite.pk): "150"})
    ticket = ticket_for(client_a, tech_a)
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=90, work_type=remote,
                         date=date(2025, 7, 3))
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=120, work_type=onsite,
                         date=date(2025, 7, 4))
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=30, work_type=remote,
                         date=date(2025, 7, 5), rate=Decimal("60"))

    run = billing.create_run(actor=owner, period="2025-07")

    amounts = sorted((line.description, line.amount) for line in lines_of(run, client_a))
    assert amounts == [("T&M: On-site, 2.00 h at 150.00", Decimal("300.00")),
                       ("T&M: Remote support, 0.50 h at 60.00", Decimal("30.00")),
                       ("T&M: Remote support, 1.50 h at 90.00", Decimal("135.00"))]
    assert run.total == Decimal("465.00")


@freeze_time("2025-08-03 10:00:00")
def test_approved_run_is_locked_and_a_new_run_supersedes_it(owner, client_a, tech_a, remote):
    # Given an approved July run that billed one time entry
    ticket = ticket_for(client_a, tech_a)
    entry = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=60, work_type=remote,
                                 date=date(2025, 7, 10))
    first = billing.approve_run(actor=owner,
                                run=billing.create_run(actor=owner, period="2025-07"))
    entry.refresh_from_db()

    # Then the run and the time it billed can no longer change
    assert first.status == RunStatus.APPROVED and entry.billed_run == first
    with pytest.raises(ValidationError):
        billing.recompute_run(actor=owner, run=first)
    with pytest.raises(ValidationError):
        billing.delete_run(actor=owner, run=first)
    with pytest.raises(ValidationError):
        timeentries.update_time_entry(actor=tech_a, entry=entry, minutes=5)
    with pytest.raises(ValidationError):
        timeentries.delete_time_entry(actor=tech_a, entry=entry)

    # When time is added late for July and a new July run is approved
    extra = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=30, work_type=remote,
                                 date=date(2025, 7, 31))
    second = billing.create_run(actor=owner, period="2025-07")
    assert second.supersedes == first
    with pytest.raises(ValidationError):
        billing.create_run(actor=owner, period="2025-07")  # one draft at a time
    billing.approve_run(actor=owner, run=second)

    # Then the first is superseded with its lines as they were; the second bills both
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == RunStatus.SUPERSEDED and second.status == RunStatus.APPROVED
    assert first.total == Decimal("90.00") and second.total == Decimal("135.00")
    assert set(TimeEntry.objects.filter(billed_run=second).values_list("id", flat=True)) == {
        entry.pk, extra.pk}
    assert AuditEntry.objects.filter(object_type="helpdesk.billingrun",
                                     changes__has_key="time_entries_locked").count() == 2

    # and the August run does not bill July's time again
    with freeze_time("2025-09-02"):
        august = billing.create_run(actor=owner, period="2025-08")
    assert lines_of(august) == []


@freeze_time("2025-08-03 10:00:00")
def test_late_time_of_a_billed_month_goes_to_the_next_run(owner, client_a, tech_a, remote):
    ticket = ticket_for(client_a, tech_a)
    billing.approve_run(actor=owner, run=billing.create_run(actor=owner, period="2025-06"))
    late = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=60, work_type=remote,
                                date=date(2025, 6, 29))

    july = billing.create_run(actor=owner, period="2025-07")

    [line] = lines_of(july, client_a)
    assert line.evidence["time_entries"][0]["id"] == late.pk
    assert line.contract is None and line.description.startswith("Uncontracted time")


@freeze_time("2025-08-03 10:00:00")
def test_csv_and_json_exports(owner, client_a, tech_a, remote):
    # Given a run with a device line and a time line, a description starting with "="
    inventory.create_device(actor=owner, client=client_a, name="PC-1", kind="workstation")
    contracts.create_contract(actor=owner, client=client_a, name="=Managed",
                              kind=ContractKind.PER_DEVICE, starts_on=date(2025, 1, 1),
                              unit_price=Decimal("20"))
    ticket = ticket_for(client_a, tech_a)
    entry = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=45, work_type=remote,
                                 date=date(2025, 7, 9))
    run = billing.create_run(actor=owner, period="2025-07")
    lines = BillingLine.objects.filter(run=run).select_related("client", "contract")

    # When exported
    rows = list(csv.DictReader(io.StringIO(billing.export_csv(run, lines))))
    body = json.loads(billing.export_json(run, lines))

    # Then the CSV has a row per line with amounts and evidence ids, formula-safe
    assert [r["kind"] for r in rows] == ["devices", "time"]
    assert rows[0]["client"] == "Acme Dental" and rows[0]["amount"] == "20.00"
    assert rows[0]["contract"] == "'=Managed"
    assert rows[0]["evidence_ids"].startswith("device:")
    assert rows[1]["evidence_ids"] == f"time:{entry.pk}" and rows[1]["amount"] == "67.50"
    # and the JSON carries the period, total and full evidence
    assert body["period"] == "2025-07" and body["total"] == "87.50"
    assert body["lines"][0]["evidence"]["devices"][0]["name"] == "PC-1"
    assert body["lines"][1]["evidence"]["time_entries"][0]["minutes"] == 45


def test_contract_validation(owner, client_a):
    with pytest.raises(ValidationError):
        contracts.create_contract(actor=owner, client=client_a, name="X",
                                  kind=ContractKind.PER_DEVICE, starts_on=date(2025, 1, 1))
    with pytest.raises(ValidationError):
        contracts.create_contract(actor=owner, client=client_a, name="X",
                                  kind=ContractKind.PREPAID, starts_on=date(2025, 1, 1))
    with pytest.raises(ValidationError):
        contracts.create_contract(actor=owner, client=client_a, name="X", unit_price=1,
                                  kind=ContractKind.PER_DEVICE, starts_on=date(2025, 1, 1),
                                  device_kinds=["toaster"])
    with pytest.raises(ValidationError):
        billing.create_run(actor=owner, period="2999-01")


@freeze_time("2025-08-03 10:00:00")
def test_billing_api_create_approve_lock_and_export(as_user, owner, tech_a, client_a, remote):
    # Given a billable hour on A's ticket and an owner using the API
    ticket = ticket_for(client_a, tech_a)
    entry = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=60, work_type=remote,
                                 date=date(2025, 7, 1))
    api = as_user(owner)

    # When a July run is created, approved, and then changed
    created = api.post("/api/v1/billing-runs/", {"period": "2025-07"},
                       content_type="application/json")
    run_id = created.json()["id"]
    approved = api.post(f"/api/v1/billing-runs/{run_id}/approve/")
    recompute = api.post(f"/api/v1/billing-runs/{run_id}/recompute/")
    delete = api.delete(f"/api/v1/billing-runs/{run_id}/")
    patch_entry = api.patch(f"/api/v1/time-entries/{entry.pk}/", {"minutes": 1},
                            content_type="application/json")

    # Then it was created and approved, and every later change is refused as locked
    assert created.status_code == 201 and created.json()["total"] == "90.00"
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert recompute.status_code == delete.status_code == patch_entry.status_code == 409
    assert api.patch(f"/api/v1/billing-lines/{BillingLine.objects.get().pk}/",
                     {"amount": "1"}, content_type="application/json").status_code == 405

    # and the exports download as attachments with the line and its evidence
    csv_response = api.get(f"/api/v1/billing-runs/{run_id}/export-csv/")
    json_response = api.get(f"/api/v1/billing-runs/{run_id}/export-json/")
    assert csv_response["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_response["Content-Disposition"]
    assert f"time:{entry.pk}" in csv_response.content.decode()
    assert json.loads(json_response.content)["lines"][0]["evidence"]["time_entries"][0][
        "id"] == entry.pk


def test_technicians_and_client_users_cannot_see_billing(as_user, tech_a, portal_b, owner,
                                                         client_a):
    contracts.create_contract(actor=owner, client=client_a, name="Managed", unit_price=5,
                              kind=ContractKind.PER_DEVICE, starts_on=date(2025, 1, 1))
    for user in (tech_a, portal_b):
        api = as_user(user)
        assert api.get("/api/v1/contracts/").status_code == 403
        assert api.get("/api/v1/billing-runs/").status_code == 403
        assert api.post("/api/v1/billing-runs/", {"period": "2025-07"},
                        content_type="application/json").status_code == 403


def test_contract_api_shows_prepaid_burn_down(as_user, owner, tech_a, client_a, remote):
    api = as_user(owner)
    response = api.post("/api/v1/contracts/", {
        "client": client_a.pk, "name": "Block", "kind": "prepaid", "hours": "10",
        "starts_on": "2025-01-01", "overage_rate": "100"}, content_type="application/json")
    assert response.status_code == 201, response.content
    ticket = ticket_for(client_a, tech_a)
    timeentries.log_time(actor=tech_a, ticket=ticket, minutes=150, work_type=remote,
                         date=date(2025, 3, 1))
    burn = api.get(f"/api/v1/contracts/{response.json()['id']}/").json()["burn_down"]
    assert burn["used"] == "2.50" and burn["remaining"] == "7.50" and burn["percent_used"] == 25


@freeze_time("2025-08-03 10:00:00")
def test_approval_is_refused_when_data_changed_since_review(owner, client_a, tech_a, remote):
    # Given a computed draft billing one hour
    ticket = ticket_for(client_a, tech_a)
    entry = timeentries.log_time(actor=tech_a, ticket=ticket, minutes=60, work_type=remote,
                                 date=date(2025, 7, 10))
    run = billing.create_run(actor=owner, period="2025-07")

    # When the entry is edited before approval
    timeentries.update_time_entry(actor=tech_a, entry=entry, minutes=600)

    # Then approving is refused until the run is recomputed, and then bills the new time
    with pytest.raises(ValidationError):
        billing.approve_run(actor=owner, run=run)
    run = billing.recompute_run(actor=owner, run=run)
    approved = billing.approve_run(actor=owner, run=run)
    assert approved.status == RunStatus.APPROVED and approved.total == Decimal("900.00")


def test_only_someone_who_sees_every_client_computes_a_run(tech_a):
    with pytest.raises(ValidationError):
        billing.create_run(actor=tech_a, period="2025-07")
    with pytest.raises(ValidationError):
        billing.create_run(actor=None, period="2025-07")
