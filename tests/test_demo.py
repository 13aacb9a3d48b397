"""The demo MSP is realistic, built through actions (audited), and loads only once."""

from __future__ import annotations

import io

from django.core.management import call_command

from watchkeeper.core import demo
from watchkeeper.core.choices import Role
from watchkeeper.core.models import AuditEntry, Client, Contact, Site, User, WebhookEndpoint


def counts() -> dict[str, int]:
    return {"clients": Client.objects.count(), "sites": Site.objects.count(),
            "contacts": Contact.objects.count(), "users": User.objects.count(),
            "webhooks": WebhookEndpoint.objects.count(), "audit": AuditEntry.objects.count()}


def test_demo_builds_a_realistic_msp_through_actions(db):
    # when the demo is loaded into an empty database
    out = io.StringIO()
    call_command("demo", stdout=out)

    # then there are clients with their own time zones and business hours, sites, contacts
    assert Client.objects.count() == 8
    assert Client.objects.values("timezone").distinct().count() >= 6
    school = Client.objects.get(name="St Brigid's Primary School")
    assert school.timezone == "Europe/Dublin"
    assert school.business_hours["1"] == [["07:30", "16:30"]]
    assert "6" not in school.business_hours
    assert all(c.sites.exists() and c.contacts.exists() for c in Client.objects.all())
    assert Site.objects.exclude(address="").count() == Site.objects.count()
    # and staff of every role, technicians assigned to some clients, portal users
    roles = set(User.objects.values_list("role", flat=True))
    assert {Role.ADMIN, Role.TECHNICIAN, Role.DISPATCHER, Role.READONLY,
            Role.CLIENT_USER} <= roles
    for tech in User.objects.filter(role=Role.TECHNICIAN):
        assert 0 < tech.assigned_clients.count() < 8
    assert all(u.client_id for u in User.objects.filter(role=Role.CLIENT_USER))
    assert all(u.must_change_password for u in User.objects.all())
    # and webhooks at 127.0.0.1 that are switched off
    hooks = list(WebhookEndpoint.objects.all())
    assert len(hooks) == 2
    assert all(not h.is_active and h.url.startswith("http://127.0.0.1") for h in hooks)
    # and every object was created through an action, so it is in the audit log
    audited = set(AuditEntry.objects.filter(actor_label="demo")
                  .values_list("object_type", flat=True))
    assert {"core.client", "core.site", "core.contact", "core.user",
            "core.webhookendpoint"} <= audited
    # and each demo user's one-time password was printed and works
    text = out.getvalue()
    dispatcher = User.objects.get(role=Role.DISPATCHER)
    line = next(line for line in text.splitlines() if dispatcher.email in line)
    assert dispatcher.check_password(line.split()[-1])


def test_demo_twice_adds_nothing(db):
    # given the demo was loaded
    call_command("demo", stdout=io.StringIO())
    before = counts()

    # when it is loaded again
    out = io.StringIO()
    call_command("demo", stdout=out)

    # then nothing is duplicated and no password is printed again
    assert counts() == before
    assert "nothing to add" in out.getvalue()
    assert "one-time passwords" not in out.getvalue()


def test_other_apps_extend_the_demo_with_loaders(db):
    # given another app's loader that runs after core and uses its clients
    seen = {}

    @demo.loader("tests.extra", order=500)
    def extra(ctx):
        seen["client"] = ctx.clients["northwind-freight-logistics"].name
        seen["order"] = [item.name for item in demo.loaders()]

    try:
        # when the demo is loaded
        demo.load(out=lambda line: None)
    finally:
        demo._loaders.pop("tests.extra")

    # then the loader ran after the core loader, with its objects
    assert seen["client"] == "Northwind Freight Logistics"
    assert seen["order"].index("core") < seen["order"].index("tests.extra")
