"""`watchkeeper backup DIR`: an online, consistent backup (see core/backup.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.core import backup


class Command(BaseCommand):
    help = ("Back up the database, the keys and every stored file into a new directory, with "
            "a manifest of checksums. Safe while the platform runs.")

    def add_arguments(self, parser):
        parser.add_argument("output", nargs="?", default=None,
                            help="Directory to create (default: "
                                 "./watchkeeper-backup-<UTC time>).")

    def handle(self, *args, output, **options):
        output = Path(output or f"watchkeeper-backup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        try:
            manifest = backup.backup(output, out=self.stdout.write)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"backup: {output} ({len(manifest['files'])} files, database "
                          f"snapshot at {manifest['created_at']})")
