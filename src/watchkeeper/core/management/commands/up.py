"""`watchkeeper up`: the whole platform on one machine, in one command.

Applies migrations, creates the first owner when there is no user at all (a one-time
password; there is no web setup wizard), optionally loads the demo, then runs web, worker
and scheduler as child processes, plus every extra role another app provides (see
core.processes.up_roles: the agent command signer, the poller, mail-in), prefixing their
output.

The console stays quiet: one line per role when it starts, then warnings and errors
(request logs with WATCHKEEPER_ACCESS_LOG=true). The one-time passwords come last, once the
roles have started, and are also written to `initial-passwords.txt` (mode 0600) in the data
directory.

A port that is taken is reported in one line before anything starts: the web port stops
`up` (exit 2); the mail-in port leaves mail-in out (say `--smtp-port N` or `--no-mail-in`).
A child that dies is restarted with backoff (core.processes.Supervisor); Ctrl-C or SIGTERM
stops them all and exits 0.
"""

from __future__ import annotations

import io
import os
import signal
import sys

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from watchkeeper.core import baseurl
from watchkeeper.core.processes import Supervisor, port_problem, up_roles

BANNER = """
  First owner account (shown once; you will choose a new password at first sign-in):
    email:    {email}
    password: {password}
"""
PASSWORD_FILE = "initial-passwords.txt"


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


def write_password_file(text: str) -> str:
    """Keep the one-time passwords in DATA_DIR/initial-passwords.txt, readable by this user
    only (0600, created that way: never briefly readable by others)."""
    path = os.path.join(settings.DATA_DIR, PASSWORD_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of ours with other bits
    with os.fdopen(fd, "w") as fh:
        fh.write("One-time passwords from `watchkeeper up` (each must be changed at first "
                 "sign-in). Delete this file once they are used.\n" + text.strip() + "\n")
    return path


def install_first_start_defaults() -> None:
    """What a new install starts with besides its owner: what the apps provide as
    `core.first_start` (core.hooks; monitoring's default policies)."""
    from watchkeeper.core import hooks

    for install in hooks.every("core.first_start"):
        install()


class Command(BaseCommand):
    help = "Migrate, create the first owner if needed, and run web + worker + scheduler."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--smtp-port", type=int, default=None,
                            help="Port of the mail-in SMTP receiver (default "
                                 f"{settings.MAIL_IN_PORT}, WATCHKEEPER_MAIL_IN_PORT).")
        parser.add_argument("--no-mail-in", action="store_true",
                            help="Do not run the mail-in SMTP receiver.")
        parser.add_argument("--owner-email", default="owner@localhost",
                            help="Email of the first owner, created when no user exists.")
        parser.add_argument("--demo", action="store_true",
                            help="Load the demo MSP (idempotent) before starting, and run "
                                 "its simulated fleet.")
        parser.add_argument("--demo-devices", type=int, default=240,
                            help="How many simulated devices the demo fleet has (0: none).")

    def handle(self, *args, host, port, smtp_port, no_mail_in, owner_email, demo, demo_devices,
               verbosity, **options):
        problem = port_problem(host, port)
        if problem:
            self.stderr.write(f"up: cannot start: {problem}; choose another with --port N")
            sys.exit(2)
        smtp_port = smtp_port if smtp_port is not None else settings.MAIL_IN_PORT
        mail_in = not no_mail_in
        if mail_in:
            problem = port_problem(settings.MAIL_IN_HOST, smtp_port)
            if problem:
                self.stderr.write(f"up: mail-in not started: {problem}; choose another with "
                                  "--smtp-port N, or --no-mail-in to silence this")
                mail_in = False

        self.stdout.write(f"Watchkeeper: data in {settings.DATA_DIR}, database "
                          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        call_command("migrate", interactive=False, verbosity=0 if verbosity < 2 else 1)
        secrets_text = ""
        created = create_first_owner(owner_email)
        if created:
            install_first_start_defaults()
            secrets_text += BANNER.format(email=created[0], password=created[1])
        if demo:
            captured = io.StringIO()
            call_command("demo", verbosity=verbosity, stdout=captured)
            demo_text = captured.getvalue()
            summary, _, passwords = demo_text.partition("\nDemo users")
            self.stdout.write(summary.strip())
            if passwords:
                secrets_text += "\n  Demo users" + passwords.rstrip() + "\n"
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
        for role in up_roles():
            if role not in available and role.replace("-", "_") not in available:
                continue
            if role == "mail-in":
                if mail_in:
                    children.append((role, [*me, role, "--port", str(smtp_port)]))
                continue
            children.append((role, [*me, role]))
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
        supervisor.wait_started(timeout=60)
        supervisor.write("up", f"open {base}/ — Ctrl-C stops everything")
        if secrets_text:
            path = write_password_file(secrets_text)
            supervisor.write_block(secrets_text.rstrip("\n")
                                   + f"\n\n  (also in {path}, mode 0600)\n\n")
        supervisor.wait()
