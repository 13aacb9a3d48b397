"""Browser: agent enrollment token (install command shown once, then revoked) and the script
library form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from watchkeeper.core import actions

from .conftest import axe_check

pytestmark = pytest.mark.browser


def test_enrollment_token_shown_once_and_revoked(signed_in_page, owner, client_a):
    site = actions.create_site(actor=owner, client=client_a, name="Main office")
    page = signed_in_page(owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Agents").click()
    page.goto("/agents/enrollment/")
    expect(page.get_by_role("heading", level=1, name="Agent enrollment")).to_be_visible()
    axe_check(page, "agent enrollment")

    # When a token is created for client A's site
    page.locator("#id_site").select_option(str(site.pk))
    page.get_by_role("button", name="Create token").click()

    # Then the install command with the token is shown once
    expect(page.get_by_role("heading", level=1)).to_contain_text("Main office")
    command = page.locator("#install-cmd").input_value()
    assert command.strip()
    # with the one-line installers for each platform, carrying the same token
    token = re.search(r"--token (wke_\S+)", command).group(1)
    for platform in ("linux", "macos"):
        line = page.locator(f"#install-{platform}").input_value()
        assert line.endswith(f"/agent/v1/install.sh | sudo sh -s -- --token {token}")
    assert f"-Token '{token}'" in page.locator("#install-windows").input_value()
    axe_check(page, "enrollment token created")
    page.goto("/agents/enrollment/")
    assert command not in page.content()

    # When it is revoked, the list says so
    page.get_by_role("button", name=re.compile("^Revoke token")).first.click()
    expect(page.locator("#tokens-table")).to_contain_text(re.compile("Revoked", re.I))


def test_script_form(signed_in_page, owner):
    page = signed_in_page(owner)
    page.goto("/scripts/")
    axe_check(page, "script library")
    page.goto("/scripts/new/")
    axe_check(page, "script form")
    page.locator("#id_name").fill("Flush DNS")
    page.locator("#id_body").fill("ipconfig /flushdns")
    page.locator("form button[type=submit]").last.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Flush DNS")
    axe_check(page, "script page")
