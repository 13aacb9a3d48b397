"""A client's registered mail domain is its own: a contact filed under another client
cannot claim its mail (security review finding 3)."""

from __future__ import annotations

import pytest

from tests.helpdesk_helpers import mail
from watchkeeper.core import actions as core_actions
from watchkeeper.core.models import Contact
from watchkeeper.helpdesk.mailin import intake as mailin
from watchkeeper.helpdesk.models import ClientEmailDomain, Ticket


@pytest.fixture
def domains(client_a, client_b):
    core_actions.create_object(actor=None, model=ClientEmailDomain, client=client_a,
                               domain="acme.test")
    core_actions.create_object(actor=None, model=ClientEmailDomain, client=client_b,
                               domain="borealis.test")


def test_mail_from_another_clients_domain_goes_to_the_domain_owner(domains, client_a,
                                                                    client_b):
    # Given a contact filed under A with an address at B's registered domain (as it could
    # be created before the check existed, or by someone who sees both clients)
    core_actions.create_contact(actor=None, client=client_a, name="Planted",
                                email="ceo@borealis.test")
    # When B's CEO writes in
    outcome = mailin.receive(bytes(mail(sender="ceo@borealis.test", subject="Board pack")),
                             channel="smtp")
    # Then the ticket belongs to B, the domain owner, without A's contact
    ticket = Ticket.objects.get(subject="Board pack")
    assert outcome.ticket == ticket
    assert ticket.client == client_b and ticket.contact is None


def test_a_contact_of_the_domain_owner_is_still_matched(domains, client_a, client_b):
    planted = core_actions.create_contact(actor=None, client=client_a, name="Planted",
                                          email="ceo@borealis.test")
    real = core_actions.create_contact(actor=None, client=client_b, name="Real CEO",
                                       email="ceo@borealis.test")
    assert mailin.match_sender("CEO@borealis.test") == (real, client_b)
    assert planted.client == client_a


def test_a_contact_at_an_unregistered_domain_is_matched_by_address(domains, client_a):
    contact = core_actions.create_contact(actor=None, client=client_a, name="Freelancer",
                                          email="sam@gmail.test")
    assert mailin.match_sender("sam@gmail.test") == (contact, client_a)


def test_api_refuses_a_contact_at_a_domain_of_a_client_the_technician_cannot_see(
        domains, client_a, as_user, tech_a):
    http = as_user(tech_a)
    # When a technician of A creates a contact in A at B's domain
    response = http.post("/api/v1/contacts/", {"client": client_a.pk, "name": "Planted",
                                               "email": "ceo@Borealis.test"},
                         content_type="application/json")
    # Then it is refused on the email field and nothing is stored
    assert response.status_code == 400, response.content
    assert "registered to another client" in response.content.decode()
    assert not Contact.objects.filter(email__iexact="ceo@borealis.test").exists()
    # And an address at A's own domain is fine
    ok = http.post("/api/v1/contacts/", {"client": client_a.pk, "name": "Dana",
                                         "email": "dana@acme.test"},
                   content_type="application/json")
    assert ok.status_code == 201, ok.content
    # But changing it to B's domain afterwards is refused too
    patched = http.patch(f"/api/v1/contacts/{ok.json()['id']}/",
                         {"email": "cfo@borealis.test"}, content_type="application/json")
    assert patched.status_code == 400, patched.content
    assert Contact.objects.get(pk=ok.json()["id"]).email == "dana@acme.test"


def test_an_owner_who_sees_both_clients_may_file_such_a_contact(domains, client_a, as_user,
                                                               owner):
    response = as_user(owner).post("/api/v1/contacts/", {
        "client": client_a.pk, "name": "Consultant", "email": "consultant@borealis.test"},
        content_type="application/json")
    assert response.status_code == 201, response.content


def test_contact_form_refuses_a_domain_of_a_client_the_technician_cannot_see(
        domains, client_a, as_user, tech_a):
    http = as_user(tech_a)
    # When the technician submits the new-contact form with B's domain
    response = http.post(f"/clients/{client_a.pk}/contacts/new/",
                         {"name": "Planted", "email": "ceo@borealis.test"})
    # Then the form is shown again with the error and nothing is stored
    assert response.status_code == 200
    assert "registered to another client" in response.content.decode()
    assert not Contact.objects.filter(email="ceo@borealis.test").exists()
    # And editing an existing contact to such an address is refused the same way
    contact = core_actions.create_contact(actor=None, client=client_a, name="Dana",
                                          email="dana@acme.test")
    response = http.post(f"/contacts/{contact.pk}/edit/",
                         {"name": "Dana", "email": "dana@borealis.test"})
    assert "registered to another client" in response.content.decode()
    contact.refresh_from_db()
    assert contact.email == "dana@acme.test"
