"""Browser: sign-in with the MFA step, the dashboard, clients (list → create → detail → edit),
sites and contacts, global search (type-ahead swap and results page) and the scope chip."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from watchkeeper.core import actions
from watchkeeper.core.models import Client

from .conftest import _next_totp, axe_check, screenshot

pytestmark = pytest.mark.browser


def test_login_with_mfa_step(page, owner):
    # Given the sign-in page
    page.goto("/admin/audit/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    axe_check(page, "login")

    # When a wrong password is given, then the form says so and stays
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    axe_check(page, "login with error")

    # When the right password is given, then the authentication code is asked for
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Email").fill(owner.email)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Authentication code")).to_be_visible()
    axe_check(page, "MFA code step")

    # When a good code is entered, then the page first asked for opens
    page.get_by_label("Authentication code").fill(_next_totp(owner))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/admin/audit/$"))
    expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()


def test_dashboard_empty_then_with_clients(signed_in_page, owner):
    # Given a fresh install, the dashboard offers to get started
    page = signed_in_page(owner)
    page.goto("/")
    expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    expect(page.locator("#getting-started")).to_be_visible()
    axe_check(page, "dashboard, fresh install")

    # Given some clients, the tiles count them and lead to the filtered list
    for name in ("Acme Dental", "Borealis Logistics", "Cobalt Law"):
        actions.create_client(actor=owner, name=name)
    page.reload()
    expect(page.locator("#tile-clients .tile-value")).to_have_text("3")
    screenshot(page, "dashboard")
    axe_check(page, "dashboard")
    page.locator("#tile-clients").click()
    expect(page).to_have_url(re.compile(r"/clients/\?status=active"))


def test_clients_create_detail_edit(signed_in_page, owner):
    actions.create_client(actor=owner, name="Borealis Logistics")
    page = signed_in_page(owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients",
                                                            exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Clients")).to_be_visible()
    screenshot(page, "client-list")
    axe_check(page, "client list")

    # When a client is created through the form
    page.locator("#create-client").click()
    expect(page.get_by_role("heading", level=1, name="New client")).to_be_visible()
    axe_check(page, "client form")
    page.get_by_label("Name", exact=True).fill("Acme Dental")
    page.get_by_label("Time zone", exact=True).select_option("Europe/Berlin")
    page.locator("#save-client").click()

    # Then its page shows it, in its own time zone
    expect(page.locator("#client-name")).to_contain_text("Acme Dental")
    expect(page.locator("#client-time")).to_contain_text("Europe/Berlin")
    axe_check(page, "client detail")
    client = Client.objects.get(name="Acme Dental")

    # When it is edited
    page.locator("#edit-client").click()
    page.get_by_label("Notes").fill("Alarm code at reception")
    page.locator("#save-client").click()
    expect(page.locator("#client-name")).to_contain_text("Acme Dental")
    client.refresh_from_db()
    assert client.notes == "Alarm code at reception"

    # and the list filter narrows by name (htmx swap of the list)
    page.goto("/clients/")
    page.get_by_label("Filter by name").fill("borea")
    expect(page.locator("#clients-table")).not_to_contain_text("Acme Dental")
    expect(page.locator("#clients-table")).to_contain_text("Borealis Logistics")
    axe_check(page, "client list after htmx filter")
    page.get_by_label("Filter by name").fill("zzz-nothing")
    expect(page.get_by_role("heading", name="No clients match these filters")).to_be_visible()
    axe_check(page, "client list, no match")


def test_sites_and_contacts(signed_in_page, owner):
    client = actions.create_client(actor=owner, name="Acme Dental")
    page = signed_in_page(owner)
    page.goto(f"/clients/{client.pk}/")

    # When a site is added from the client page
    page.get_by_role("link", name="+ Site").click()
    expect(page.get_by_role("heading", level=1, name="New site")).to_be_visible()
    axe_check(page, "site form")
    page.get_by_label("Name", exact=True).fill("Main office")
    page.get_by_label("Address").fill("1 High Street")
    page.locator("#save-site").click()
    expect(page.get_by_text("Main office").first).to_be_visible()

    # and a contact at that site
    page.goto(f"/clients/{client.pk}/")
    page.get_by_role("link", name="+ Contact").click()
    page.get_by_label("Name", exact=True).fill("Dana Molnar")
    page.get_by_label("Email").fill("dana@acme.test")
    page.get_by_label("Site", exact=True).select_option(label="Main office")
    axe_check(page, "contact form")
    page.locator("#save-contact").click()
    expect(page.get_by_text("Dana Molnar").first).to_be_visible()

    # Then both lists show them
    page.goto("/sites/")
    expect(page.get_by_role("heading", level=1, name="Sites")).to_be_visible()
    expect(page.get_by_role("link", name="Main office")).to_be_visible()
    axe_check(page, "site list")
    page.goto("/contacts/")
    expect(page.get_by_role("link", name="Dana Molnar")).to_be_visible()
    axe_check(page, "contact list")
    page.get_by_role("link", name="Dana Molnar").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dana Molnar")
    axe_check(page, "contact detail")


def test_search_typeahead_and_results_page(signed_in_page, owner):
    client = actions.create_client(actor=owner, name="Acme Dental")
    actions.create_site(actor=owner, client=client, name="Acme Warehouse")
    actions.create_client(actor=owner, name="Borealis Logistics")
    page = signed_in_page(owner)
    page.goto("/sites/")

    # When typing in the top-bar search, then the type-ahead is swapped in by htmx
    page.get_by_role("combobox", name=re.compile("Search")).fill("acme")
    results = page.locator("#typeahead-results")
    expect(results).to_be_visible()
    expect(results).to_contain_text("Acme Dental")
    expect(results).to_contain_text("Acme Warehouse")
    expect(results).not_to_contain_text("Borealis")
    axe_check(page, "search type-ahead open")

    # When Enter is pressed, then the results page lists every kind of match
    page.get_by_role("combobox", name=re.compile("Search")).press("Enter")
    expect(page.get_by_role("heading", level=1, name="Search")).to_be_visible()
    expect(page.locator("#search-summary")).to_contain_text("acme")
    axe_check(page, "search page")


def test_scope_chip_narrows_lists_not_search(signed_in_page, owner):
    actions.create_client(actor=owner, name="Acme Dental")
    actions.create_client(actor=owner, name="Borealis Logistics")
    page = signed_in_page(owner)
    page.goto("/clients/")

    # When the owner scopes to Acme
    page.locator("#scope-menu > summary").click()
    page.get_by_label("Show only this client in lists").select_option(label="Acme Dental")
    axe_check(page, "scope panel open (htmx)")
    page.get_by_role("button", name="Apply").click()

    # Then the chip shows it and the list is narrowed
    expect(page.locator("#scope-chip")).to_contain_text("Acme Dental")
    expect(page.locator("#clients-table")).not_to_contain_text("Borealis")
    axe_check(page, "client list, scoped")

    # When the chip is cleared, then all clients are back
    page.locator("#scope-clear").click()
    expect(page.locator("#clients-table")).to_contain_text("Borealis Logistics")


def test_keyboard_shortcuts_dialog(signed_in_page, owner):
    page = signed_in_page(owner)
    page.goto("/")
    # When the help button is pressed, then the dialog opens and passes axe
    page.locator("#shortcut-help-open").click()
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    axe_check(page, "shortcuts dialog open")
    # and Escape closes it
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # and "/" focuses the search box
    page.keyboard.press("/")
    expect(page.locator("#global-search")).to_be_focused()
