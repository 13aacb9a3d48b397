"""`watchkeeper events_reference [--write docs/events.md | --check docs/events.md]`."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.core import event_reference


class Command(BaseCommand):
    help = ("Print the event reference generated from the event catalogue; --write PATH "
            "writes it, --check PATH fails when PATH is out of date.")

    def add_arguments(self, parser):
        parser.add_argument("--write", metavar="PATH")
        parser.add_argument("--check", metavar="PATH")

    def handle(self, *args, write=None, check=None, **options):
        text = event_reference.render()
        if check:
            current = Path(check).read_text() if Path(check).exists() else ""
            if current != text:
                raise CommandError(f"{check} is out of date: run events_reference --write "
                                   f"{check}")
            self.stdout.write(f"{check} is up to date")
            return
        if write:
            Path(write).write_text(text)
            self.stdout.write(f"wrote {write}")
            return
        self.stdout.write(text, ending="")
