"""Issue 11, defect 3: the enrollment command and mail links follow the address the server
really runs on (`up --port`, `web --port`), unless WATCHKEEPER_BASE_URL says otherwise."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command

from tests.factories import make_client
from watchkeeper.core.models import Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_env(monkeypatch, settings):
    # Restored after the test: the environment variable (children inherit it) and the
    # setting (this process reads it).
    monkeypatch.delenv("WATCHKEEPER_BASE_URL", raising=False)
    monkeypatch.delenv("WATCHKEEPER_BASE_URL_FROM_PORT", raising=False)
    settings.BASE_URL = "http://127.0.0.1:8000"
    return settings


def _enroll_page(as_user, user, client) -> str:
    site = Site.objects.create(client=client, name="HQ")
    response = as_user(user).post("/agents/enrollment/", {"site": site.pk, "hours": "1"})
    assert response.status_code == 200
    return response.content.decode()


def test_web_port_moves_the_base_url_and_the_enrollment_command(clean_env, monkeypatch,
                                                                 as_user, tech_a, client_a):
    served = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.update(kw))
    # When the web role runs on port 8765 without WATCHKEEPER_BASE_URL
    call_command("web", host="127.0.0.1", port=8765)
    assert served["port"] == 8765
    # Then this process and its workers use http://127.0.0.1:8765
    assert clean_env.BASE_URL == "http://127.0.0.1:8765"
    assert os.environ["WATCHKEEPER_BASE_URL"] == "http://127.0.0.1:8765"
    # And the enrollment command shown to the technician names it
    html = _enroll_page(as_user, tech_a, client_a)
    assert "--server http://127.0.0.1:8765 " in html and ":8000" not in html


def test_up_port_reaches_every_role(clean_env, monkeypatch):
    seen = {}

    class FakeSupervisor:
        def __init__(self, children, out=None):
            seen["children"] = children
            # what each child process inherits
            seen["env"] = os.environ.get("WATCHKEEPER_BASE_URL")

        def request_stop(self, *args):
            pass

        def start(self):
            pass

        def write(self, label, line):
            seen["banner"] = line

        def wait_started(self, timeout):
            pass

        def write_block(self, text):
            pass

        def wait(self):
            return 0

    monkeypatch.setattr("watchkeeper.core.management.commands.up.Supervisor", FakeSupervisor)
    monkeypatch.setattr("signal.signal", lambda *a: None)
    call_command("up", host="127.0.0.1", port=8123)
    assert seen["env"] == "http://127.0.0.1:8123"
    assert clean_env.BASE_URL == "http://127.0.0.1:8123"
    assert "http://127.0.0.1:8123/" in seen["banner"]


def test_mail_links_follow_the_port(clean_env, monkeypatch):
    from watchkeeper.core import baseurl
    from watchkeeper.helpdesk import notify
    from watchkeeper.helpdesk.models import Ticket

    baseurl.follow_listen_address("127.0.0.1", 8444)
    client = make_client("Mail Co")
    ticket = Ticket.objects.create(client=client, subject="Printer", requester_name="Jo",
                                   requester_email="jo@mail.test")
    url = notify.context_for(ticket)["ticket"]["url"]
    assert url.startswith("http://127.0.0.1:8444/portal/tickets/")


@pytest.mark.parametrize("host,expected", [
    ("0.0.0.0", "http://127.0.0.1:9000"),  # noqa: S104 - a wildcard bind is shown as loopback
    ("::", "http://[::1]:9000"),
    ("::1", "http://[::1]:9000"),
    ("rmm.lan", "http://rmm.lan:9000"),
    ("10.0.0.5", "http://10.0.0.5:9000"),
])
def test_the_listen_address_becomes_a_url(clean_env, host, expected):
    from watchkeeper.core import baseurl

    assert baseurl.follow_listen_address(host, 9000) == expected


def test_an_explicit_base_url_wins(clean_env, monkeypatch, as_user, tech_a, client_a):
    from watchkeeper.core import baseurl

    monkeypatch.setenv("WATCHKEEPER_BASE_URL", "https://rmm.example.com")
    clean_env.BASE_URL = "https://rmm.example.com"
    assert baseurl.follow_listen_address("127.0.0.1", 8765) == "https://rmm.example.com"
    assert os.environ["WATCHKEEPER_BASE_URL"] == "https://rmm.example.com"
    html = _enroll_page(as_user, tech_a, client_a)
    assert "--server https://rmm.example.com " in html
