"""`watchkeeper agent-dist [--out DIR] [--source DIR] [--no-deb] [--if-changed]`: build the
agent packages the server serves (the agent wheel with its dependencies, the .deb)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.agents.installers import dist


class Command(BaseCommand):
    help = "Build the agent's wheel, dependency wheels and Debian package for the installers."

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, default=None,
                            help="directory (default WATCHKEEPER_AGENT_DIST_DIR, "
                                 "<data dir>/agent-dist)")
        parser.add_argument("--source", type=Path, default=None,
                            help="the agent's sources (default agent/ of this checkout)")
        parser.add_argument("--no-deb", action="store_true", help="skip the .deb")
        parser.add_argument("--if-changed", action="store_true",
                            help="do nothing when the sources did not change since the last "
                                 "build")

    def handle(self, *args, out, source, no_deb, if_changed, **options):
        try:
            dist.build(source=source, out=out, deb=not no_deb, if_changed=if_changed,
                       log=lambda line: self.stdout.write(f"agent-dist: {line}"))
        except dist.DistError as exc:
            raise CommandError(str(exc)) from exc
