"""Client, site and contact pages: list (filter, sort, paging, CSV), detail, create/edit/delete."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from tests.factories import make_client
from watchkeeper.core import actions
from watchkeeper.core.models import AuditEntry, Client, Contact, Event, Site

pytestmark = pytest.mark.django_db


def _hours_post(**overrides) -> dict:
    """Form data for Monday-Friday 09:00-17:00, closed at the weekend."""
    data = {}
    for day in range(1, 8):
        if day <= 5:
            data.update({f"d{day}_open": "on", f"d{day}_start1": "09:00",
                         f"d{day}_end1": "17:00"})
    data.update(overrides)
    return data


def _names(response) -> list[str]:
    return [c.name for c in response.context["page_obj"].object_list]


# --- list -----------------------------------------------------------------------------

def test_client_list_renders_for_owner_with_counts(as_user, owner, client_a, client_b):
    # Given two clients, one with a site and two contacts
    actions.create_site(actor=owner, client=client_a, name="HQ")
    actions.create_contact(actor=owner, client=client_a, name="Ann")
    actions.create_contact(actor=owner, client=client_a, name="Bob")
    # When the owner opens the client list
    response = as_user(owner).get(reverse("clients"))
    # Then both clients are listed with their site and contact counts
    assert response.status_code == 200
    rows = {c.name: c for c in response.context["page_obj"].object_list}
    assert set(rows) == {"Acme Dental", "Borealis Logistics"}
    assert (rows["Acme Dental"].site_count, rows["Acme Dental"].contact_count) == (1, 2)
    borealis = rows["Borealis Logistics"]
    assert (borealis.site_count, borealis.contact_count) == (0, 0)
    html = response.content.decode()
    assert reverse("client_detail", args=[client_a.pk]) in html


def test_technician_sees_only_assigned_clients(as_user, tech_a, client_a, client_b):
    response = as_user(tech_a).get(reverse("clients"))
    assert _names(response) == ["Acme Dental"]
    assert "Borealis" not in response.content.decode()


def test_technician_without_clients_sees_no_access_state(as_user, tech_a, client_a):
    tech_a.assigned_clients.clear()
    html = as_user(tech_a).get(reverse("clients")).content.decode()
    assert 'data-empty="no-access"' in html


def test_status_chips_filter_and_count(as_user, owner, client_a, client_b):
    # Given one active and one inactive client
    Client.objects.filter(pk=client_b.pk).update(is_active=False)
    http = as_user(owner)
    # When the owner picks the "inactive" chip
    response = http.get(reverse("clients"), {"status": "inactive"})
    # Then only the inactive client shows, and each chip carries its count
    assert _names(response) == ["Borealis Logistics"]
    assert response.context["counts"] == {"all": 2, "active": 1, "inactive": 1}
    assert _names(http.get(reverse("clients"), {"status": "active"})) == ["Acme Dental"]


def test_text_filter_and_no_match_state(as_user, owner, client_a, client_b):
    http = as_user(owner)
    assert _names(http.get(reverse("clients"), {"q": "borea"})) == ["Borealis Logistics"]
    response = http.get(reverse("clients"), {"q": "zzz-nothing"})
    assert _names(response) == []
    assert 'data-empty="no-match"' in response.content.decode()


def test_empty_list_says_nothing_yet(as_user, owner):
    html = as_user(owner).get(reverse("clients")).content.decode()
    assert 'data-empty="nothing-yet"' in html


def test_sorting_by_column_both_directions(as_user, owner):
    # Given clients with different numbers of sites
    make_client("Alpha")
    b, c = make_client("Bravo"), make_client("Charlie")
    for i in range(3):
        actions.create_site(actor=owner, client=b, name=f"B{i}")
    actions.create_site(actor=owner, client=c, name="C0")
    http = as_user(owner)
    # When sorting by sites descending, then by name descending
    by_sites = http.get(reverse("clients"), {"sort": "-sites"})
    by_name_desc = http.get(reverse("clients"), {"sort": "-name"})
    # Then the rows follow the column, and the header announces the sort
    assert _names(by_sites) == ["Bravo", "Charlie", "Alpha"]
    assert _names(by_name_desc) == ["Charlie", "Bravo", "Alpha"]
    assert 'aria-sort="descending"' in by_sites.content.decode()
    # And an unknown sort key falls back to name
    assert _names(http.get(reverse("clients"), {"sort": "password"})) == ["Alpha", "Bravo",
                                                                         "Charlie"]


def test_paging_and_page_size(as_user, owner):
    # Given 30 clients
    for i in range(30):
        make_client(f"Client {i:02d}")
    http = as_user(owner)
    # When asking for page 2 with 25 per page
    response = http.get(reverse("clients"), {"per": "25", "page": "2"})
    # Then the last 5 are shown, and the page info says so
    assert _names(response) == [f"Client {i:02d}" for i in range(25, 30)]
    assert "26–30 of 30" in response.content.decode()
    # An unsupported page size falls back to the default (50: all on one page)
    assert len(_names(http.get(reverse("clients"), {"per": "7"}))) == 30
    # A page beyond the end clamps to the last page
    assert _names(http.get(reverse("clients"), {"per": "25", "page": "99"}))[0] == "Client 25"


def test_csv_export_matches_filtered_list(as_user, owner, client_a, client_b):
    # Given three clients, one inactive, and a filter that matches two of them
    make_client("Acme Plumbing", is_active=False, notes="=HYPERLINK(\"x\")")
    http = as_user(owner)
    params = {"q": "acme", "sort": "-name", "per": "25", "page": "1"}
    listed = _names(http.get(reverse("clients"), params))
    # When exporting with the same filter
    response = http.get(reverse("clients_export"), params)
    # Then the CSV has exactly the listed rows in the same order
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == listed == ["Acme Plumbing", "Acme Dental"]
    assert rows[0]["is_active"] == "no"
    # and a cell that would be a spreadsheet formula is neutralised
    assert rows[0]["notes"].startswith("'=")


def test_csv_export_is_scoped_for_technician(as_user, tech_a, client_a, client_b):
    response = as_user(tech_a).get(reverse("clients_export"))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["Acme Dental"]


def test_client_list_query_count_is_bounded(as_user, owner, django_assert_max_num_queries):
    # Given 100 clients with sites and contacts
    clients = [Client(name=f"Client {i:03d}", slug=f"client-{i:03d}") for i in range(100)]
    Client.objects.bulk_create(clients)
    clients = list(Client.objects.all())
    Site.objects.bulk_create(Site(client=c, name="HQ") for c in clients)
    Contact.objects.bulk_create(Contact(client=c, name="Boss") for c in clients)
    http = as_user(owner)
    # When the owner lists them 100 per page
    with django_assert_max_num_queries(8):
        response = http.get(reverse("clients"), {"per": "100"})
    # Then all rows render with their counts, in a bounded number of queries
    assert len(response.context["page_obj"].object_list) == 100
    assert {c.site_count for c in response.context["page_obj"].object_list} == {1}


# --- detail ---------------------------------------------------------------------------

def test_client_detail_shows_clock_hours_sites_contacts(as_user, owner, client_a):
    Client.objects.filter(pk=client_a.pk).update(timezone="Asia/Tokyo")
    site = actions.create_site(actor=owner, client=client_a, name="Tokyo office")
    actions.create_contact(actor=owner, client=client_a, name="Yuki", email="y@acme.test")
    http = as_user(owner)
    response = http.get(reverse("client_detail", args=[client_a.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Asia/Tokyo" in html and 'id="viewer-time"' in html
    assert response.context["clock"]["client_tz"] == "Asia/Tokyo"
    assert ("Monday", "08:00–18:00") in response.context["hours"]
    assert ("Sunday", "Closed") in response.context["hours"]
    assert reverse("site_detail", args=[site.pk]) in html
    for tab in ("sites", "contacts", "activity"):
        tab_page = http.get(reverse("client_detail", args=[client_a.pk]), {"tab": tab})
        assert tab_page.status_code == 200
    activity = http.get(reverse("client_detail", args=[client_a.pk]), {"tab": "activity"})
    assert "Tokyo office" in activity.content.decode()


def test_other_tenants_client_is_404_for_technician(as_user, tech_a, client_a, client_b):
    http = as_user(tech_a)
    for name in ("client_detail", "client_edit", "client_delete", "client_site_create",
                 "client_contact_create"):
        assert http.get(reverse(name, args=[client_b.pk])).status_code == 404, name


# --- create / edit / delete -----------------------------------------------------------

def test_create_client_writes_audit_and_event(as_user, owner):
    # Given the owner on the new-client form
    http = as_user(owner)
    assert http.get(reverse("client_create")).status_code == 200
    # When they submit a client with hours and a zone
    response = http.post(reverse("client_create"), {
        "name": "Cedar Law", "timezone": "Europe/Berlin", "notes": "VIP", "is_active": "on",
        **_hours_post(d3_start2="13:00", d3_end2="17:30", d3_end1="12:00"),
    })
    # Then the client exists, with the hours as entered, and the change is audited
    client = Client.objects.get(name="Cedar Law")
    assert response.status_code == 302
    assert response["Location"] == reverse("client_detail", args=[client.pk])
    assert client.timezone == "Europe/Berlin"
    assert client.business_hours["3"] == [["09:00", "12:00"], ["13:00", "17:30"]]
    assert "6" not in client.business_hours
    entry = AuditEntry.objects.get(object_type="core.client", object_id=str(client.pk))
    assert entry.action == "create" and entry.actor == owner and entry.client_id == client.pk
    assert Event.objects.filter(kind="client.created", client=client).exists()


def test_create_client_rejects_duplicate_name_and_bad_hours(as_user, owner, client_a):
    http = as_user(owner)
    response = http.post(reverse("client_create"), {
        "name": "Acme Dental", "timezone": "UTC", **_hours_post()})
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    response = http.post(reverse("client_create"), {
        "name": "New One", "timezone": "UTC", **_hours_post(d1_end1="08:00")})
    assert response.status_code == 200
    assert "Monday: the end must be after the start." in response.content.decode()
    assert not Client.objects.filter(name="New One").exists()


def test_edit_client_audits_changed_fields(as_user, owner, client_a):
    http = as_user(owner)
    page = http.get(reverse("client_edit", args=[client_a.pk]))
    assert page.context["form"].initial["d1_start1"] == "08:00"
    response = http.post(reverse("client_edit", args=[client_a.pk]), {
        "name": "Acme Dental Group", "timezone": "UTC", "notes": "", **_hours_post()})
    assert response.status_code == 302
    client_a.refresh_from_db()
    assert client_a.name == "Acme Dental Group" and client_a.is_active is False
    entry = AuditEntry.objects.get(object_type="core.client", action="update")
    assert entry.changes["name"] == ["Acme Dental", "Acme Dental Group"]
    assert entry.changes["is_active"] == [True, False]
    assert "business_hours" in entry.changes


def test_technician_edits_assigned_client(as_user, tech_a, client_a):
    response = as_user(tech_a).post(reverse("client_edit", args=[client_a.pk]), {
        "name": "Acme Dental", "timezone": "UTC", "notes": "call before visiting",
        "is_active": "on", **_hours_post()})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(actor=tech_a, action="update").exists()


def test_readonly_user_cannot_create(as_user, db):
    from tests.factories import make_user
    from watchkeeper.core.choices import Role

    reader = make_user("ro@msp.test", Role.READONLY)
    http = as_user(reader)
    assert http.get(reverse("clients")).status_code == 200
    assert http.get(reverse("client_create")).status_code == 403
    assert http.post(reverse("client_create"), {"name": "X", "timezone": "UTC"}).status_code == 403


def test_delete_client_needs_typed_name_and_no_children(as_user, owner, client_a, client_b):
    http = as_user(owner)
    site = actions.create_site(actor=owner, client=client_b, name="Depot")
    # A client with a site cannot be deleted; the page says why
    blocked = http.get(reverse("client_delete", args=[client_b.pk]))
    assert 'id="delete-blocked"' in blocked.content.decode()
    http.post(reverse("client_delete", args=[client_b.pk]), {"confirm": client_b.name})
    assert Client.objects.filter(pk=client_b.pk).exists()
    assert Site.objects.filter(pk=site.pk).exists()
    # A wrong confirmation does nothing
    response = http.post(reverse("client_delete", args=[client_a.pk]), {"confirm": "acme"})
    assert response.status_code == 200 and Client.objects.filter(pk=client_a.pk).exists()
    # The exact name deletes it, with an audit row naming it
    response = http.post(reverse("client_delete", args=[client_a.pk]), {"confirm": "Acme Dental"})
    assert response.status_code == 302
    assert not Client.objects.filter(pk=client_a.pk).exists()
    assert AuditEntry.objects.filter(action="delete", object_repr="Acme Dental").exists()


# --- sites and contacts ---------------------------------------------------------------

def test_site_create_edit_delete(as_user, owner, client_a):
    http = as_user(owner)
    response = http.post(reverse("client_site_create", args=[client_a.pk]), {
        "name": "Branch", "address": "2 High St", "timezone": "", "notes": ""})
    site = Site.objects.get(name="Branch")
    assert response["Location"] == reverse("site_detail", args=[site.pk])
    assert site.client == client_a
    assert http.get(reverse("site_detail", args=[site.pk])).status_code == 200
    http.post(reverse("site_edit", args=[site.pk]), {
        "name": "Branch", "address": "3 High St", "timezone": "Europe/London", "notes": ""})
    site.refresh_from_db()
    assert site.address == "3 High St" and site.timezone == "Europe/London"
    # and the site page shows its change log, newest first
    history = http.get(reverse("site_detail", args=[site.pk])).context["history"]
    assert [e.action for e in history] == ["update", "create"]
    assert set(history[0].changes) == {"address", "timezone"}
    # Duplicate name within the client is an error on the form, not a crash
    actions.create_site(actor=owner, client=client_a, name="Other")
    dup = http.post(reverse("site_edit", args=[site.pk]), {"name": "Other", "timezone": ""})
    assert dup.status_code == 200 and dup.context["form"].errors
    confirm = http.get(reverse("site_delete", args=[site.pk]))
    assert "Branch" in confirm.content.decode()
    http.post(reverse("site_delete", args=[site.pk]))
    assert not Site.objects.filter(pk=site.pk).exists()
    actions_logged = set(AuditEntry.objects.filter(object_type="core.site", object_id=str(site.pk))
                         .values_list("action", flat=True))
    assert actions_logged == {"create", "update", "delete"}


def test_contact_create_edit_delete(as_user, owner, client_a, client_b):
    site = actions.create_site(actor=owner, client=client_a, name="HQ")
    other_site = actions.create_site(actor=owner, client=client_b, name="Elsewhere")
    http = as_user(owner)
    # A site of another client is not a valid choice
    bad = http.post(reverse("client_contact_create", args=[client_a.pk]), {
        "name": "Eve", "site": other_site.pk})
    assert bad.status_code == 200 and "site" in bad.context["form"].errors
    http.post(reverse("client_contact_create", args=[client_a.pk]), {
        "name": "Dana", "email": "dana@acme.test", "phone": "+1 555", "site": site.pk,
        "is_primary": "on"})
    contact = Contact.objects.get(name="Dana")
    assert contact.client == client_a and contact.site == site and contact.is_primary
    http.post(reverse("contact_edit", args=[contact.pk]), {"name": "Dana Smith", "site": ""})
    contact.refresh_from_db()
    assert contact.name == "Dana Smith" and contact.site is None and not contact.is_primary
    page = http.get(reverse("contact_detail", args=[contact.pk]))
    assert [e.action for e in page.context["history"]] == ["update", "create"]
    assert 'id="history"' in page.content.decode()
    assert http.get(reverse("contact_delete", args=[contact.pk])).status_code == 200
    http.post(reverse("contact_delete", args=[contact.pk]))
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert AuditEntry.objects.filter(object_type="core.contact", action="delete").exists()


def test_new_site_menu_uses_scope_or_asks_for_client(as_user, owner, client_a):
    http = as_user(owner)
    # Without a scope the user chooses the client first
    page = http.get(reverse("site_create"))
    assert page.status_code == 200 and "Acme Dental" in page.content.decode()
    chosen = http.get(reverse("site_create"), {"client": client_a.pk})
    assert chosen["Location"] == reverse("client_site_create", args=[client_a.pk])
    # With a scope it goes straight to that client's form
    http.post(reverse("scope"), {"client": client_a.pk})
    assert http.get(reverse("contact_create"))["Location"] == reverse(
        "client_contact_create", args=[client_a.pk])


def test_site_and_contact_lists(as_user, owner, tech_a, client_a, client_b):
    actions.create_site(actor=owner, client=client_a, name="HQ A")
    actions.create_site(actor=owner, client=client_b, name="HQ B")
    actions.create_contact(actor=owner, client=client_a, name="Ann", email="ann@a.test")
    actions.create_contact(actor=owner, client=client_b, name="Ben")
    assert _names(as_user(owner).get(reverse("sites"))) == ["HQ A", "HQ B"]
    http = as_user(tech_a)
    assert _names(http.get(reverse("sites"))) == ["HQ A"]
    assert _names(http.get(reverse("contacts"))) == ["Ann"]
    assert _names(http.get(reverse("contacts"), {"q": "ann@"})) == ["Ann"]


def test_technician_cannot_add_or_delete_clients(as_user, tech_a, client_a):
    # Given a technician (sees only assigned clients; may edit them)
    http = as_user(tech_a)
    # Then adding a client (which they could not open afterwards) and deleting one are refused
    assert http.get(reverse("client_create")).status_code == 403
    created = http.post(reverse("client_create"), {"name": "Mine", "timezone": "UTC"})
    assert created.status_code == 403
    assert not Client.objects.filter(name="Mine").exists()
    response = http.post(reverse("client_delete", args=[client_a.pk]), {"confirm": client_a.name})
    assert response.status_code == 403 and Client.objects.filter(pk=client_a.pk).exists()
    # and the pages offer neither, while sites and contacts can still be added
    listing = http.get(reverse("clients")).content.decode()
    assert 'id="create-client"' not in listing and 'id="new-client"' not in listing
    assert 'id="new-site"' in listing
    detail = http.get(reverse("client_detail", args=[client_a.pk])).content.decode()
    assert 'id="delete-client"' not in detail and 'id="edit-client"' in detail


def test_site_and_contact_lists_sort_by_column(as_user, owner, client_a, client_b):
    # Given sites and contacts at two clients
    hq = actions.create_site(actor=owner, client=client_a, name="Zulu HQ")
    actions.create_site(actor=owner, client=client_b, name="Alpha depot")
    actions.create_contact(actor=owner, client=client_a, name="Yann", site=hq)
    actions.create_contact(actor=owner, client=client_a, name="Ann", site=hq, email="z@a.test")
    actions.create_contact(actor=owner, client=client_b, name="Ben", email="a@b.test")
    http = as_user(owner)
    # Then the default order is by client, and each sortable column orders both ways
    assert _names(http.get(reverse("sites"))) == ["Zulu HQ", "Alpha depot"]
    assert _names(http.get(reverse("sites"), {"sort": "name"})) == ["Alpha depot", "Zulu HQ"]
    assert _names(http.get(reverse("sites"), {"sort": "-contacts"})) == ["Zulu HQ", "Alpha depot"]
    assert _names(http.get(reverse("contacts"), {"sort": "-email"})) == ["Ann", "Ben", "Yann"]
    assert _names(http.get(reverse("contacts"), {"sort": "-name"})) == ["Yann", "Ben", "Ann"]
    # and a column that is not sortable falls back to the default
    assert _names(http.get(reverse("contacts"), {"sort": "phone"})) == ["Ann", "Yann", "Ben"]
