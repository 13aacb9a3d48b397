"""The UI shell: dashboard, portal redirect, global search, client scope chip, navigation."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import make_client
from watchkeeper.core import actions
from watchkeeper.core.models import Contact, Site
from watchkeeper.core.selectors import SCOPE_SESSION_KEY

pytestmark = pytest.mark.django_db


def _site(actor, client, name, **fields) -> Site:
    return actions.create_site(actor=actor, client=client, name=name, **fields)


def _contact(actor, client, name, **fields) -> Contact:
    return actions.create_contact(actor=actor, client=client, name=name, **fields)


# --- shell and dashboard --------------------------------------------------------------

def test_dashboard_renders_shell_for_owner(as_user, owner, client_a):
    # Given an owner and one client
    http = as_user(owner)
    # When they open the dashboard
    response = http.get(reverse("dashboard"))
    # Then the page shows the shell (search, nav, new menu, shortcut help) and tiles
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="global-search"' in html and 'name="q"' in html
    assert 'id="nav-clients"' in html
    assert 'id="new-menu"' in html
    assert 'id="shortcut-help"' in html
    assert 'id="tile-clients"' in html and 'id="tile-dead"' in html
    assert response.context["stats"].clients_active == 1
    # and modules not built yet show as disabled "soon" items, never as dead links
    nav = html[html.index('id="sidenav"'):html.index("</nav>", html.index('id="sidenav"'))]
    soon_items = re.findall(r'<span class="nav-disabled" aria-disabled="true">(\w+) '
                            r'<span class="soon">soon</span></span>', nav)
    assert nav.count('class="soon"') == len(soon_items)
    assert not re.search(r"<a [^>]*>[^<]*<span class=\"soon\"", nav)
    for module in ("Tickets", "Alerts", "Schedule", "Automation", "Reports", "Knowledge"):
        assert module in soon_items or f">{module}</a>" in nav, module
    # and the owner has no "getting started" state since a client exists
    assert 'id="getting-started"' not in html


def test_dashboard_fresh_install_shows_getting_started(as_user, owner):
    # Given an owner on a fresh install (no clients)
    response = as_user(owner).get(reverse("dashboard"))
    # Then the dashboard explains how to start, with a way to create the first client
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="getting-started"' in html
    assert reverse("client_create") in html


def test_dashboard_technician_sees_only_assigned_clients(as_user, owner, tech_a, client_a,
                                                         client_b):
    # Given activity on client A and client B
    _site(owner, client_a, "Acme HQ")
    _site(owner, client_b, "Borealis Depot")
    # When the technician of client A opens the dashboard
    response = as_user(tech_a).get(reverse("dashboard"))
    # Then the numbers and the activity cover client A only
    assert response.status_code == 200
    stats = response.context["stats"]
    assert stats.clients_active == 1
    assert stats.sites == 1
    assert stats.outbox_pending is None and stats.users is None
    # and the activity feed (its own page) covers client A only
    feed = as_user(tech_a).get(reverse("activity"))
    reprs = {e.object_repr for e in feed.context["activity"]}
    assert "Acme HQ" in reprs
    assert "Borealis Depot" not in reprs
    assert [c.name for c in response.context["my_clients"]] == ["Acme Dental"]
    html = response.content.decode()
    assert 'id="my-clients"' in html
    assert "Borealis" not in html
    # and no admin-only tiles are shown
    assert 'id="tile-dead"' not in html


def test_client_user_is_redirected_to_portal(as_user, portal_b, client_b):
    # Given a client user of client B
    http = as_user(portal_b)
    # When they open the dashboard
    response = http.get(reverse("dashboard"))
    # Then they are sent to the portal, which shows their own client
    assert response.status_code == 302
    assert response["Location"] == reverse("portal")
    portal = http.get(reverse("portal"))
    assert portal.status_code == 200
    html = portal.content.decode()
    assert "Borealis Logistics" in html
    assert 'id="portal-open-requests"' in html and "More comes later" not in html
    # without a search box they could not use
    assert 'id="global-search"' not in html
    # and staff pages are refused
    assert http.get(reverse("clients")).status_code == 403


def test_staff_cannot_open_portal(as_user, owner):
    assert as_user(owner).get(reverse("portal")).status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert "next=/" in response["Location"]


def test_nav_hides_admin_items_without_capability(as_user, tech_a):
    # Given a technician (no users.view, no audit.view)
    html = as_user(tech_a).get(reverse("dashboard")).content.decode()
    # Then the admin section shows only what the role may use
    assert "Audit log" not in html
    assert ">Users<" not in html and "Users <span" not in html
    assert "Webhooks" in html  # technicians may view webhooks


def test_sign_out_is_a_post_form(as_user, owner):
    # Given a signed-in owner, the profile menu signs out with a POST (CSRF-protected) form
    html = as_user(owner).get(reverse("dashboard")).content.decode()
    assert 'id="sign-out"' in html
    assert f'<form method="post" action="{reverse("logout")}">' in html
    assert reverse("profile") in html and reverse("tokens") in html


# --- search ---------------------------------------------------------------------------

def test_search_groups_clients_sites_and_contacts(as_user, owner, client_a):
    # Given a site and a contact that match "acme" by name, address and email
    site = _site(owner, client_a, "Main office", address="1 Acme Road")
    contact = _contact(owner, client_a, "Dana Smith", email="dana@acme.test", phone="+1 555 0100")
    # When the owner searches
    response = as_user(owner).get(reverse("search"), {"q": "acme"})
    # Then every group lists its matches, each as a real link
    assert response.status_code == 200
    results = response.context["results"]
    assert [c.pk for c in results.clients] == [client_a.pk]
    assert [s.pk for s in results.sites] == [site.pk]
    assert [c.pk for c in results.contacts] == [contact.pk]
    html = response.content.decode()
    assert reverse("client_detail", args=[client_a.pk]) in html
    assert reverse("site_detail", args=[site.pk]) in html
    assert reverse("contact_detail", args=[contact.pk]) in html


def test_search_by_phone(as_user, owner, client_a):
    contact = _contact(owner, client_a, "Lee", phone="+44 20 7946 0018")
    results = as_user(owner).get(reverse("search"), {"q": "7946"}).context["results"]
    assert [c.pk for c in results.contacts] == [contact.pk]


def test_search_by_phone_ignores_punctuation(as_user, owner, client_a):
    # Given a number stored with spaces and brackets
    contact = _contact(owner, client_a, "Ola", phone="+47 (22) 33-44-55")
    # When searching for it typed another way, then it is found
    http = as_user(owner)
    for query in ("22334455", "22 33 44 55", "+4722334455"):
        results = http.get(reverse("search"), {"q": query}).context["results"]
        assert [c.pk for c in results.contacts] == [contact.pk], query
    # and a digits-only query that is not in the number finds nothing
    assert http.get(reverse("search"), {"q": "99999"}).context["results"].contacts == []


def test_search_typeahead_returns_partial(as_user, owner, client_a):
    # Given a client; when htmx asks for type-ahead results
    response = as_user(owner).get(reverse("search"), {"q": "Acme"}, HTTP_HX_REQUEST="true")
    # Then only the partial is returned, with a link to the full results page
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert reverse("client_detail", args=[client_a.pk]) in html
    assert f'{reverse("search")}?q=Acme' in html


def test_technician_search_sees_only_assigned_clients(as_user, owner, tech_a, client_a, client_b):
    # Given sites named alike at client A and client B
    _site(owner, client_a, "Warehouse North")
    _site(owner, client_b, "Warehouse South")
    # When the technician of client A searches
    results = as_user(tech_a).get(reverse("search"), {"q": "warehouse"}).context["results"]
    # Then only client A's site is found
    assert [s.name for s in results.sites] == ["Warehouse North"]


def test_typeahead_for_one_character_is_empty(as_user, owner, client_a):
    response = as_user(owner).get(reverse("search"), {"q": "a"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""


def test_search_needs_two_characters(as_user, owner, client_a):
    response = as_user(owner).get(reverse("search"), {"q": "a"})
    assert response.context["results"].total == 0
    assert "Type at least two characters" in response.content.decode()


# --- client scope ---------------------------------------------------------------------

def test_scope_narrows_lists_but_not_search(as_user, owner, client_a, client_b):
    # Given an owner with two clients, each with a site
    _site(owner, client_a, "Alpha office")
    _site(owner, client_b, "Beta office")
    http = as_user(owner)
    # When they scope to client A
    response = http.post(reverse("scope"), {"client": client_a.pk, "next": reverse("clients")})
    assert response.status_code == 302 and response["Location"] == reverse("clients")
    assert http.session[SCOPE_SESSION_KEY] == client_a.pk
    # Then the client and site lists show client A only, and the chip names it
    clients_page = http.get(reverse("clients"))
    assert [c.pk for c in clients_page.context["page_obj"].object_list] == [client_a.pk]
    assert 'id="scope-chip"' in clients_page.content.decode()
    sites_page = http.get(reverse("sites"))
    assert [s.name for s in sites_page.context["page_obj"].object_list] == ["Alpha office"]
    # But search still finds client B's site
    results = http.get(reverse("search"), {"q": "office"}).context["results"]
    assert {s.name for s in results.sites} == {"Alpha office", "Beta office"}
    # When they clear the chip, lists show every client again
    http.post(reverse("scope"), {"client": ""})
    assert SCOPE_SESSION_KEY not in http.session
    clients_page = http.get(reverse("clients"))
    assert len(clients_page.context["page_obj"].object_list) == 2


def test_scope_refuses_invisible_client(as_user, tech_a, client_a, client_b):
    # Given a technician of client A; when they try to scope to client B
    http = as_user(tech_a)
    http.post(reverse("scope"), {"client": client_b.pk})
    # Then the scope is not set
    assert SCOPE_SESSION_KEY not in http.session


def test_scope_ignores_open_redirect(as_user, owner, client_a):
    response = as_user(owner).post(reverse("scope"), {"client": client_a.pk,
                                                       "next": "https://evil.test/"})
    assert response["Location"] == reverse("clients")


def test_scope_chooser_lists_visible_clients(as_user, tech_a, client_a, client_b):
    make_client("Cobalt Ltd")
    response = as_user(tech_a).get(reverse("scope"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "Acme Dental" in html and "Borealis" not in html and "Cobalt" not in html


def test_dashboard_query_count_is_bounded(as_user, owner, django_assert_max_num_queries):
    # Given 30 clients, each with a site (so activity rows point at many clients)
    for i in range(30):
        client = make_client(f"Client {i:02d}")
        _site(owner, client, f"Site {i:02d}")
    http = as_user(owner)
    # When the owner opens the dashboard (tiles, then the work panels: queue, load, SLA,
    # alerts, health, offline agents, billing), the number of queries does not grow with
    # the rows
    with django_assert_max_num_queries(24):
        response = http.get(reverse("dashboard"))
    assert response.status_code == 200
    assert len(response.context["health"]) == 12
    # nor on the activity feed's page
    with django_assert_max_num_queries(8):
        response = http.get(reverse("activity"))
    assert len(response.context["activity"]) == 30


def test_scope_is_dropped_when_access_is_withdrawn(as_user, tech_a, client_a):
    # Given a technician who scoped lists to their client
    http = as_user(tech_a)
    http.post(reverse("scope"), {"client": client_a.pk})
    assert http.session[SCOPE_SESSION_KEY] == client_a.pk
    # When they are unassigned from it
    tech_a.assigned_clients.remove(client_a)
    # Then the next page shows no chip and forgets the stale scope
    html = http.get(reverse("clients")).content.decode()
    assert 'id="scope-chip"' not in html
    assert SCOPE_SESSION_KEY not in http.session


def test_times_are_shown_in_the_viewers_time_zone(owner):
    """Given an owner whose profile zone is Asia/Tokyo, when a page renders a time,
    then Django's current time zone is the viewer's, not UTC."""
    from django.test import RequestFactory
    from django.utils import timezone as djtz

    from watchkeeper.core.middleware import RequestContextMiddleware

    owner.timezone = "Asia/Tokyo"
    owner.save(update_fields=["timezone"])
    seen = {}

    def view(request):
        seen["tz"] = djtz.get_current_timezone_name()
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = RequestFactory().get("/")
    request.user = owner
    RequestContextMiddleware(view)(request)
    assert seen["tz"] == "Asia/Tokyo"
    assert djtz.get_current_timezone_name() == "UTC"  # reset after the request
