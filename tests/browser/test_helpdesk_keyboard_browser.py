"""Browser: the ticket page can be worked from the keyboard — n/r pick note or reply and
focus the composer, a canned response is inserted, Ctrl+Enter sends; s/a focus status and
assignee. The note mode is visibly different (and still passes axe)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from watchkeeper.core import actions as core_actions
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.models import CannedResponse

from .conftest import axe_check

pytestmark = pytest.mark.browser


def test_ticket_page_keyboard_flow(signed_in_page, owner, client_a):
    ticket = actions.create_ticket(actor=None, client=client_a, subject="Keyboard only",
                                   requester_email="pat@acme.test")
    core_actions.create_object(actor=None, model=CannedResponse, title="Reboot please",
                               body="Please restart the computer and tell us.")
    page = signed_in_page(owner)
    page.goto(f"/tickets/{ticket.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keyboard only")

    # When the user presses n: the composer switches to an internal note and has focus
    page.locator("body").press("n")
    expect(page.get_by_role("radio", name="Internal note")).to_be_checked()
    expect(page.locator("#reply-body")).to_be_focused()
    expect(page.locator("#composer")).to_have_class("card card-body composer is-note")
    axe_check(page, "ticket composer in note mode")

    # r switches back to a public reply; a canned response is inserted
    page.locator("#reply-body").press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("r")
    expect(page.get_by_role("radio", name="Public reply", exact=False)).to_be_checked()
    page.get_by_label("Canned response").select_option(label="Reboot please")
    expect(page.locator("#reply-body")).to_have_value("Please restart the computer and tell us.")

    # Ctrl+Enter sends it
    page.locator("#reply-body").press("Control+Enter")
    expect(page.locator("#timeline")).to_contain_text("Please restart the computer")

    # s and a focus the status and assignee fields
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("s")
    expect(page.locator("#t-status")).to_be_focused()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")
    expect(page.locator("#t-assignee")).to_be_focused()
