"""Work-first home pages (issue 11): a technician sees their open tickets by SLA due with
breached / at-risk marks, the active alerts of their clients only, offline devices and their
running timer; a dispatcher the unassigned queue and each technician's load; an owner the
MSP at a glance. The audit feed lives on its own page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_user
from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.agents.choices import AgentStatus, Connectivity
from watchkeeper.agents.models import Agent
from watchkeeper.core.choices import Role
from watchkeeper.helpdesk import actions as helpdesk
from watchkeeper.helpdesk.sla.models import SlaClock
from watchkeeper.helpdesk.time import actions as timeentries
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import State

pytestmark = pytest.mark.django_db


@pytest.fixture
def work(owner, tech_a, client_a, client_b):
    late = helpdesk.create_ticket(actor=owner, subject="Server room too hot", client=client_a,
                                  assignee=tech_a, notify=False)
    calm = helpdesk.create_ticket(actor=owner, subject="New mouse please", client=client_a,
                                  assignee=tech_a, notify=False)
    helpdesk.create_ticket(actor=owner, subject="Unowned printer issue", client=client_b,
                           notify=False)
    now = timezone.now()
    # SLA clocks as the SLA engine leaves them: one breached, one due later
    from watchkeeper.helpdesk.sla.models import SlaPolicy

    policy = SlaPolicy.objects.create(name="Std", scope="default", targets={})
    SlaClock.objects.create(ticket=late, metric="resolution", policy=policy, priority="p3",
                            target_seconds=60, due_at=now - timedelta(hours=1),
                            breached_at=now - timedelta(hours=1))
    SlaClock.objects.create(ticket=calm, metric="resolution", policy=policy, priority="p3",
                            target_seconds=60, due_at=now + timedelta(days=2))
    _, check = disk_policy(owner)
    a1, b1 = make_device(client_a, "acme-fs"), make_device(client_b, "beta-fs")
    record_results([CheckResult(check.pk, a1.pk, client_a.pk, State.CRITICAL, message="95%"),
                    CheckResult(check.pk, b1.pk, client_b.pk, State.CRITICAL, message="97%")])
    laptop = make_device(client_a, "acme-lt01")
    Agent.objects.create(client=client_a, device=laptop, hostname="acme-lt01", public_key="k1",
                         status=AgentStatus.APPROVED, connectivity=Connectivity.OFFLINE,
                         last_seen_at=now - timedelta(hours=3))
    from watchkeeper.helpdesk.time.models import WorkType

    timeentries.start_timer(actor=tech_a, ticket=calm,
                            work_type=WorkType.objects.create(name="Remote"))
    return {"late": late, "calm": calm}


def test_technician_home_is_their_work(as_user, tech_a, work):
    html = as_user(tech_a).get("/").content.decode()
    mine = html[html.index('id="my-tickets"'):]
    # Breached first, then the one due later; not the other client's ticket
    assert mine.index("Server room too hot") < mine.index("New mouse please")
    assert "Breached" in mine[:mine.index("New mouse please")]
    assert "Unowned printer issue" not in html
    assert 'id="tile-breached"' in html
    alerts = html[html.index('id="active-alerts"'):]
    assert "Disk space on acme-fs" in alerts and "beta-fs" not in html
    assert "acme-lt01" in html[html.index('id="offline-devices"'):]
    assert 'id="my-timer"' in html and "New mouse please" in html[html.index('id="my-timer"'):]
    assert 'id="recent-activity"' in html and "/activity/" in html


def test_dispatcher_home_is_the_queue_and_the_load(as_user, tech_a, work):
    dispatcher = make_user("dispatch@msp.test", Role.DISPATCHER)
    html = as_user(dispatcher).get("/").content.decode()
    queue = html[html.index('id="unassigned-queue"'):]
    assert "Unowned printer issue" in queue and "Server room too hot" not in queue
    load = html[html.index('id="technician-load"'):]
    assert "tech@msp.test" in load or tech_a.display_name in load


def test_owner_home_is_the_msp_at_a_glance(as_user, owner, client_a, work):
    html = as_user(owner).get("/").content.decode()
    health = html[html.index('id="clients-health"'):]
    assert "Acme Dental" in health and "Borealis Logistics" in health
    assert 'id="tile-attainment"' in html and 'id="tile-alerts"' in html


def test_portal_home_shows_open_requests_and_device_health(as_user, portal_b, client_b,
                                                           work):
    make_device(client_b, "beta-pc", last_seen_at=timezone.now(), reboot_required=True)
    html = as_user(portal_b).get("/portal/").content.decode()
    requests = html[html.index('id="portal-open-requests"'):]
    assert "Unowned printer issue" in requests and "Server room too hot" not in html
    health = html[html.index('id="device-health"'):]
    assert "Need a reboot" in health and "devices in total" in health


def test_the_contact_picker_follows_the_chosen_client(as_user, owner, client_a, client_b):
    from watchkeeper.core.models import Contact

    mine = Contact.objects.create(client=client_a, name="Ann Acme", email="ann@acme.test")
    other = Contact.objects.create(client=client_b, name="Bob Beta", email="bob@beta.test")
    api = as_user(owner)
    html = api.get("/tickets/new").content.decode()
    # Every option names its client (for the page's filter), with the client in its label
    assert f'data-client="{client_a.pk}" value="{mine.pk}"' in html or \
        f'value="{mine.pk}" data-client="{client_a.pk}"' in html
    assert "Bob Beta (Borealis Logistics)" in html
    # Once a client is chosen, only its contacts are offered
    narrowed = api.get(f"/tickets/new?client={client_a.pk}").content.decode()
    assert "Ann Acme" in narrowed and "Bob Beta" not in narrowed
    refused = api.post("/tickets/new", {"client": client_a.pk, "contact": other.pk,
                                         "subject": "x", "type": "incident",
                                         "impact": "medium", "urgency": "medium",
                                         "source": "phone"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()


def test_staff_link_devices_and_attach_files_on_a_ticket(as_user, tech_a, client_a, client_b,
                                                        work):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ticket = work["calm"]
    mine, other = make_device(client_a, "acme-ws7"), make_device(client_b, "beta-ws1")
    api = as_user(tech_a)
    page = api.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "acme-ws7" in page and "beta-ws1" not in page
    api.post(f"/tickets/{ticket.pk}/devices", {"device": other.pk})
    api.post(f"/tickets/{ticket.pk}/devices", {"device": mine.pk})
    assert list(ticket.devices.values_list("name", flat=True)) == ["acme-ws7"]
    api.post(f"/tickets/{ticket.pk}/devices", {"device": mine.pk, "verb": "remove"})
    assert not ticket.devices.exists()
    api.post(f"/tickets/{ticket.pk}/attach",
             {"file": SimpleUploadedFile("event-log.txt", b"disk error on sector 7\n")})
    attachment = ticket.attachments.get()
    assert attachment.filename == "event-log.txt" and attachment.size == 23
    assert "event-log.txt" in api.get(f"/tickets/{ticket.pk}/").content.decode()


def test_a_portal_request_carries_an_attachment(as_user, portal_b):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from watchkeeper.helpdesk.models import Ticket

    api = as_user(portal_b)
    assert 'enctype="multipart/form-data"' in api.get("/portal/tickets/new").content.decode()
    response = api.post("/portal/tickets/new", {
        "subject": "Printer shows an error", "description": "See the photo.",
        "urgency": "medium",
        "attachment": SimpleUploadedFile("error.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64)})
    assert response.status_code == 302
    ticket = Ticket.objects.get(subject="Printer shows an error")
    assert ticket.attachments.get().filename == "error.png"
    page = api.get(f"/portal/tickets/{ticket.pk}/").content.decode()
    assert "error.png" in page
