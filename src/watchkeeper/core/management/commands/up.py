"""`watchkeeper up`: the whole platform on one machine, in one command.

Applies migrations, creates the first owner when there is no user at all (printing a
one-time password; there is no web setup wizard), optionally loads the demo, then runs web,
worker and scheduler as child processes, plus every extra role another app provides (see
core.processes.up_roles, e.g. the agent command signer), prefixing their output. Ctrl-C or
SIGTERM stops them all and exits 0; if one child dies the others are stopped and its status
is returned.
"""

from __future__ import annotations

import signal
import sys

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from watchkeeper.core import baseurl
from watchkeeper.core.processes import Supervisor, up_roles

BANNER = """
  First owner account (shown once; you will choose a new password at first sign-in):
    email:    {email}
    password: {password}
"""


def create_first_owner(email: str) -> tuple[str, str] | None:
    """Create the owner when the database has no user; (email, password) or None."""
    from watchkeeper.core.accounts import create_user
    from watchkeeper.core.choices import Role
    from watchkeeper.core.models import User

    if User.objects.exists():
        return None
    user, password = create_user(actor="watchkeeper up", email=email, role=Role.OWNER,
                                 name="Owner")
    return user.email, password


def install_first_start_defaults() -> None:
    """What a new install starts with besides its owner (default monitoring policies)."""
    from watchkeeper.monitoring import defaults

    defaults.install()


class Command(BaseCommand):
    help = "Migrate, create the first owner if needed, and run web + worker + scheduler."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--owner-email", default="owner@localhost",
                            help="Email of the first owner, created when no user exists.")
        parser.add_argument("--demo", action="store_true",
                            help="Load the demo MSP (idempotent) before starting, and run "
                                 "its simulated fleet.")
        parser.add_argument("--demo-devices", type=int, default=240,
                            help="How many simulated devices the demo fleet has (0: none).")

    def handle(self, *args, host, port, owner_email, demo, demo_devices, verbosity,
               **options):
        self.stdout.write(f"Watchkeeper: data in {settings.DATA_DIR}, database "
                          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        call_command("migrate", interactive=False, verbosity=min(verbosity, 1))
        created = create_first_owner(owner_email)
        if created:
            install_first_start_defaults()
            self.stdout.write(BANNER.format(email=created[0], password=created[1]))
        if demo:
            call_command("demo", verbosity=verbosity)
        self.stdout.flush()

        # Links, mail and the enrollment command follow --port (unless configured); the
        # roles inherit it through the environment.
        base = baseurl.follow_listen_address(host, port)
        me = [sys.executable, "-m", "watchkeeper.cli"]
        children = [
            ("web", [*me, "web", "--host", host, "--port", str(port)]),
            ("worker", [*me, "worker"]),
            ("scheduler", [*me, "scheduler"]),
        ]
        available = get_commands()
        children += [(role, [*me, role]) for role in up_roles()
                     if role in available or role.replace("-", "_") in available]
        if demo and demo_devices > 0:
            # The simulated fleet enrolls and checks in through the agent API of this server.
            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
            children.append(("demo-fleet", [*me, "demo", "--no-load", "--devices",
                                            str(demo_devices), "--server",
                                            f"http://{local}:{port}"]))
        supervisor = Supervisor(children, out=sys.stdout)
        signal.signal(signal.SIGINT, supervisor.request_stop)
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        supervisor.start()
        supervisor.write("up", f"open {base}/ — Ctrl-C stops everything")
        status = supervisor.wait()
        if status:
            sys.exit(status)

