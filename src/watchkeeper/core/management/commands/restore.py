"""`watchkeeper restore DIR`: verify a backup's manifest, then restore it (core/backup.py).

Run it with the platform stopped, on an empty data directory and database (or --force)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.core import backup


class Command(BaseCommand):
    help = "Verify a backup against its manifest and restore database, keys and files."

    def add_arguments(self, parser):
        parser.add_argument("source", help="A directory written by `watchkeeper backup`.")
        parser.add_argument("--verify-only", action="store_true",
                            help="Check every checksum and change nothing.")
        parser.add_argument("--force", action="store_true",
                            help="Replace a database, keys or files that are already there.")

    def handle(self, *args, source, verify_only, force, **options):
        try:
            if verify_only:
                manifest = backup.verify(Path(source))
                self.stdout.write(f"restore: {source} verified "
                                  f"({len(manifest['files'])} files)")
                return
            backup.restore(Path(source), force=force, out=self.stdout.write)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("restore: done; start the platform (`watchkeeper up` runs any "
                          "pending migrations)")
