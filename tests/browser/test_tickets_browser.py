"""Browser: log a call → ticket page → internal note and public reply with a status change;
a portal user's request; a technician of A never sees B's tickets."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import axe_check

pytestmark = pytest.mark.browser


def _log_call(page, client_name: str, subject: str) -> str:
    page.goto("/tickets/new")
    expect(page.get_by_role("heading", level=1, name="Log a call")).to_be_visible()
    page.locator("#id_client").select_option(label=client_name)
    page.locator("#id_subject").fill(subject)
    page.locator("#id_description").fill("Reception PC shows a blue screen after updates.")
    page.get_by_role("button", name="Create ticket").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(subject)
    return page.url


def test_log_call_note_and_reply(signed_in_page, owner, client_a):
    page = signed_in_page(owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tickets",
                                                            exact=True).click()
    axe_check(page, "ticket list")

    # When the owner logs a call for client A
    page.get_by_role("link", name=re.compile("Log a call")).first.click()
    axe_check(page, "ticket form")
    url = _log_call(page, "Acme Dental", "Blue screen at reception")
    axe_check(page, "ticket page")

    # and adds an internal note, then a public reply that resolves it
    page.get_by_role("radio", name="Internal note").check()
    page.locator("#reply-body").fill("Driver rollback planned tonight.")
    page.get_by_role("button", name="Send").click()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Driver rollback planned tonight.")
    expect(timeline.locator("[data-kind=note]")).to_contain_text("Internal note")

    page.get_by_role("radio", name=re.compile("Public reply")).check()
    page.locator("#reply-body").fill("We rolled back the driver; please check.")
    page.locator("#reply-status").select_option(label="Resolved")
    page.get_by_role("button", name="Send").click()
    expect(timeline).to_contain_text("We rolled back the driver")
    axe_check(page, "ticket page with timeline")

    # Then the list shows the ticket with its new status
    page.goto("/tickets/?status=resolved")
    expect(page.locator("#ticket-table")).to_contain_text("Blue screen at reception")
    assert url.rstrip("/").split("/")[-1].isdigit()


def test_portal_request_and_tenant_isolation(signed_in_page, browser, live_server, portal_b,
                                              tech_a, client_b):
    # Given a portal user of B who sends a request
    page = signed_in_page(portal_b)
    page.goto("/portal/tickets/")
    expect(page.get_by_role("heading", level=1, name="Your tickets")).to_be_visible()
    page.get_by_role("link", name="New request").first.click()
    axe_check(page, "portal request form")
    page.get_by_label("Subject").fill("Printer on 2nd floor jams")
    page.get_by_label("What happened?").fill("Every second page jams since Monday.")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Printer on 2nd floor jams")
    axe_check(page, "portal ticket")
    ticket_url = page.url

    # When a technician of A (in their own browser) looks for it
    from .conftest import sign_in_through_form

    other = browser.new_context(base_url=live_server.url)
    try:
        theirs = sign_in_through_form(other.new_page(), tech_a)
        theirs.goto("/tickets/?q=Printer")
        # Then it is not listed
        expect(theirs.get_by_role("heading", level=1)).to_be_visible()
        assert "Printer on 2nd floor jams" not in theirs.content()
        # and its staff page does not exist for them
        pk = ticket_url.rstrip("/").split("/")[-1]
        assert theirs.goto(f"/tickets/{pk}/").status == 404
    finally:
        other.close()


def test_a_forwarded_mail_ticket_shows_its_parts_and_the_original(signed_in_page, owner,
                                                                    client_a):
    from email.mime.application import MIMEApplication
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    from watchkeeper.helpdesk.mailin import intake

    inner = MIMEMultipart("mixed")
    inner["From"], inner["Subject"] = "billing@vendor.test", "Invoice overdue"
    inner.attach(MIMEText("Please pay invoice 4711 today.", "plain"))
    outer = MIMEMultipart("mixed")
    outer["From"], outer["To"] = "dana@acme.test", "help@msp.test"
    outer["Subject"], outer["Message-ID"] = "Fwd: Invoice overdue", "<fwd-1@acme.test>"
    outer.attach(MIMEText("<p>Is this phishing? Caf&eacute; &amp; co</p>", "html"))
    outer.attach(MIMEMessage(inner))
    outer.attach(MIMEApplication(b"%PDF-1.4 x", Name="scan.pdf"))
    ticket = intake.receive(outer.as_bytes()).ticket

    page = signed_in_page(owner)
    page.goto(f"/tickets/{ticket.pk}/")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Is this phishing? Café & co")
    expect(timeline).to_contain_text("Forwarded message, attached as Invoice overdue.eml")
    expect(timeline).to_contain_text("Please pay invoice 4711 today.")
    expect(timeline.get_by_role("link", name="Invoice overdue.eml")).to_be_visible()
    expect(timeline.get_by_role("link", name="scan.pdf")).to_be_visible()
    original = timeline.get_by_role("link", name="Original message")
    expect(original).to_have_attribute("href", re.compile(r"/original-mail/\d+$"))
    axe_check(page, "ticket page from a forwarded mail")
