"""`watchkeeper demo`: load the demo MSP (idempotent; see core.demo)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from watchkeeper.core import demo


class Command(BaseCommand):
    help = "Load a realistic demo MSP: clients, sites, contacts, staff, portal users, webhooks."

    def handle(self, *args, **options):
        ctx = demo.load(out=self.stdout.write)
        if ctx.created:
            summary = ", ".join(f"{n} {what}" for what, n in sorted(ctx.created.items()))
            self.stdout.write(f"Demo loaded: created {summary}.")
        else:
            self.stdout.write("Demo already loaded: nothing to add.")
        if ctx.passwords:
            self.stdout.write("\nDemo users (one-time passwords, changed at first sign-in):")
            width = max(len(email) for email, _, _ in ctx.passwords)
            for email, role, password in ctx.passwords:
                self.stdout.write(f"  {email.ljust(width)}  {role:<12} {password}")
