"""Browser: every server-rendered page of the project, as the owner, a technician of client
A and a portal user of client B, filled with real objects, loads without a JavaScript error
and passes axe-core (no serious or critical finding).

The route walk is the one the tenant-isolation tests use, so a page added anywhere in the
project is checked here without anyone listing it.
"""

from __future__ import annotations

import pytest

from tests.tenancy_fixtures import build_world, view_model, walk
from watchkeeper.core.permissions import has_capability

from .conftest import axe_violations, describe_violations

pytestmark = pytest.mark.browser

# Pages that must be among those checked: guards against a walk that silently skips.
MUST_VISIT = {
    "dashboard", "clients", "client_detail", "client_edit", "client_create", "sites",
    "site_detail", "contacts", "contact_detail", "search", "profile", "tokens", "users",
    "roles", "audit_log", "audit_entry", "events", "event_detail", "webhooks",
    "webhook_create", "webhook_detail", "webhook_edit", "webhook_delete", "devices", "device",
}
# GET on these changes state or leaves the session: never visited by the walk.
NEVER_VISIT = {"logout"}


def _html_get_routes(world, user):
    for route in walk():
        decl = route.permission
        if route.is_api or isinstance(decl, dict) or route.is_public("GET") or decl is None:
            continue  # API (JSON), agent protocol, public pages (login: tested on its own)
        if not has_capability(user, decl):
            continue  # refused by role (portal for staff, admin pages for technicians)
        if route.label in NEVER_VISIT:
            continue
        if not route.params:
            yield route, route.url()
            continue
        target = world.get(view_model(route.callback))
        if target is None:
            continue  # keyed by something other than a tenant-owned row (role, token)
        yield route, route.url(**{p: target.pk for p in route.params})


@pytest.mark.parametrize("persona,tenant", [("owner", "client_a"), ("tech_a", "client_a"),
                                            ("portal_b", "client_b")])
def test_every_page_loads_and_passes_axe(request, signed_in_page, persona, tenant):
    # Given one object of every tenant-owned model, of a client the persona sees
    world = build_world(request.getfixturevalue(tenant), "Alpha")
    user = request.getfixturevalue(persona)
    page = signed_in_page(user)
    visited, findings, broken = set(), [], []

    # When every page is opened
    for route, url in _html_get_routes(world, user):
        # Ask first with the page's own cookies: POST-only routes (405), CSV downloads and
        # JSON endpoints are not pages to render.
        probe = page.request.get(url, max_redirects=0)
        if probe.status in (403, 404, 405) or 300 <= probe.status < 400:
            continue  # refused inside the view, POST-only, not a row id, or a redirect
        if probe.status >= 400:
            broken.append(f"{route.label} {url}: HTTP {probe.status}")
            continue
        if not probe.headers.get("content-type", "").startswith("text/html"):
            continue
        page.goto(url)
        visited.add(route.label)
        blocking = axe_violations(page)
        if blocking:
            findings.append(describe_violations(blocking, f"{route.label} ({url})"))

    # Then none fails, none has a serious accessibility problem, and the walk reached them
    assert not broken, "pages that fail:\n" + "\n".join(broken)
    assert not page.js_errors, f"JavaScript errors: {page.js_errors}"
    assert not findings, "\n\n".join(findings)
    if persona == "owner":
        assert MUST_VISIT <= visited, f"pages the walk did not reach: {MUST_VISIT - visited}"
    elif persona == "tech_a":  # a technician of A reaches A's pages, not the admin ones
        assert {"dashboard", "clients", "client_detail", "devices", "device"} <= visited
        assert not visited & {"audit_log", "users", "events", "webhook_create"}
    else:  # a client user reaches the portal and their profile, no staff page
        assert {"portal", "profile"} <= visited
        assert not visited & {"dashboard", "clients", "devices", "audit_log"}
