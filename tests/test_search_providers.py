"""Global search reaches what other modules own (devices by serial or IP), across every
tenant the user may see and never beyond."""

from __future__ import annotations

from watchkeeper.inventory import actions as inventory_actions


def _devices(client_a, client_b):
    a = inventory_actions.create_device(actor=None, client=client_a, name="reception-pc",
                                        serial="SN-ACME-4471", primary_ip="10.20.0.15")
    b = inventory_actions.create_device(actor=None, client=client_b, name="dock-scanner",
                                        serial="SN-BORE-4471", primary_ip="10.30.0.15")
    return a, b


def test_search_page_finds_devices_by_serial_for_an_owner(client_a, client_b, owner, as_user):
    # Given a device in each client
    a, b = _devices(client_a, client_b)
    # When the owner searches a serial fragment both share
    body = as_user(owner).get("/search/", {"q": "4471"}).content.decode()
    # Then both devices are listed, each a link to its page
    assert f'href="/devices/{a.pk}/"' in body
    assert f'href="/devices/{b.pk}/"' in body


def test_technician_finds_only_devices_of_assigned_clients(client_a, client_b, tech_a,
                                                           as_user):
    a, b = _devices(client_a, client_b)
    http = as_user(tech_a)
    page = http.get("/search/", {"q": "4471"}).content.decode()
    typeahead = http.get("/search/", {"q": "4471"}, HTTP_HX_REQUEST="true").content.decode()
    api = http.get("/api/v1/search/", {"q": "4471"}).json()
    for body in (page, typeahead):
        assert "reception-pc" in body
        assert "dock-scanner" not in body
    names = {r["name"] for r in api["results"] if r["type"] == "device"}
    assert names == {"reception-pc"}


def test_api_search_finds_a_device_by_ip(client_a, client_b, owner, as_user):
    _devices(client_a, client_b)
    api = as_user(owner).get("/api/v1/search/", {"q": "10.30.0.15"}).json()
    assert [r["name"] for r in api["results"] if r["type"] == "device"] == ["dock-scanner"]
