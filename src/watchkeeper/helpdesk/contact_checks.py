"""The helpdesk's check on contact addresses (registered with core.contact_rules).

Inbound mail is matched to a client by contact address and by the client's registered mail
domains. A contact whose address is at a domain registered to a client the person saving it
cannot see would claim that client's mail, so it is refused; the error does not name the
other client (the actor may not know it exists).
"""

from __future__ import annotations

from watchkeeper.core.tenancy import can_see_client

from .models import ClientEmailDomain


def mail_domain_check(user, client, email: str) -> str | None:
    domain = email.rpartition("@")[2].strip().lower()
    if not domain:
        return None
    owner_id = (ClientEmailDomain.objects.filter(domain__iexact=domain)
                .values_list("client_id", flat=True).first())
    if owner_id is None or owner_id == client.pk:
        return None
    if user is not None and can_see_client(user, owner_id):
        return None
    return (f"The mail domain {domain} is registered to another client; "
            "a contact here cannot use an address at it.")
