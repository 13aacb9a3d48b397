"""`watchkeeper createuser`: create a user and print their one-time password."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from watchkeeper.core import accounts
from watchkeeper.core.choices import Role
from watchkeeper.core.models import Client


class Command(BaseCommand):
    help = ("Create a user with a one-time password, printed once on stdout; they must "
            "choose their own password at first sign-in. Example: watchkeeper createuser "
            "--email ann@msp.example --role owner --name 'Ann Example'")

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="Sign-in email address.")
        parser.add_argument("--role", required=True, choices=Role.values,
                            help="Role: " + ", ".join(f"{v} ({label})"
                                                      for v, label in Role.choices) + ".")
        parser.add_argument("--client", metavar="NAME",
                            help="Client (name or slug). Client users: the client they belong "
                                 "to. Technicians: a client they are assigned to (repeatable).",
                            action="append", default=[])
        parser.add_argument("--name", default="", help="Display name.")

    def handle(self, *args, email, role, client, name, **options):
        clients = [self._client(c) for c in client]
        if role == Role.CLIENT_USER and len(clients) != 1:
            raise CommandError("A client user needs exactly one --client.")
        try:
            user, password = accounts.create_user(
                actor="cli:createuser", email=email, role=role, name=name,
                client=clients[0] if role == Role.CLIENT_USER else None,
                assigned_clients=clients if role == Role.TECHNICIAN else (),
            )
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from exc
        if clients and role not in (Role.CLIENT_USER, Role.TECHNICIAN):
            self.stderr.write(f"note: --client ignored for role {role} (it sees every client)")
        self.stderr.write(f"Created {user.email} ({user.get_role_display()}). "
                          "One-time password (shown once):")
        self.stdout.write(password)

    def _client(self, value: str) -> Client:
        found = (Client.objects.filter(name__iexact=value).first()
                 or Client.objects.filter(slug=value).first())
        if found is None:
            raise CommandError(f"No client named {value!r}.")
        return found
