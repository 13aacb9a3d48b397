"""`watchkeeper enrollment-token create --client NAME --site NAME [--auto-approve]`:
an enrollment token for scripted installs; prints the token and the install command."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.agents import actions
from watchkeeper.agents.installers.scripts import one_liners
from watchkeeper.core.models import Client, Site


class Command(BaseCommand):
    help = "Create, list or revoke agent enrollment tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--client", required=True, help="client name")
        create.add_argument("--site", required=True, help="site name")
        create.add_argument("--auto-approve", action="store_true")
        create.add_argument("--hours", type=float, default=None,
                            help="lifetime (default WATCHKEEPER_ENROLLMENT_TOKEN_HOURS)")
        create.add_argument("--max-uses", type=int, default=None)
        create.add_argument("--note", default="")
        create.add_argument("--json", action="store_true")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix")

    def handle(self, *args, action, **opts):
        actor = "cli"
        if action == "revoke":
            from watchkeeper.agents.models import EnrollmentToken

            token = EnrollmentToken.objects.filter(prefix=opts["prefix"]).first()
            if token is None:
                raise CommandError(f"no token with prefix {opts['prefix']!r}")
            actions.revoke_enrollment_token(actor=actor, token=token)
            self.stdout.write(f"revoked {token.prefix}")
            return
        client = Client.objects.filter(name=opts["client"]).first()
        if client is None:
            raise CommandError(f"no client named {opts['client']!r}")
        site = Site.objects.filter(client=client, name=opts["site"]).first()
        if site is None:
            raise CommandError(f"client {client.name!r} has no site named {opts['site']!r}")
        try:
            token, raw = actions.create_enrollment_token(
                actor=actor, client=client, site=site, hours=opts["hours"],
                auto_approve=opts["auto_approve"], note=opts["note"],
                max_uses=opts["max_uses"])
        except actions.ActionError as exc:
            raise CommandError(str(exc)) from exc
        command = actions.install_command(raw)
        installers = one_liners(raw)
        if opts["json"]:
            self.stdout.write(json.dumps({"token": raw, "prefix": token.prefix,
                                          "expires_at": token.expires_at.isoformat(),
                                          "install": command, "installers": installers}))
        else:
            self.stdout.write(raw)
            self.stderr.write(f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC; install on Linux "
                              f"or macOS with:\n  {installers['linux']}\nor, with the agent "
                              f"installed by hand:\n  {command}")
