"""The `watchkeeper` command: platform roles and admin tasks, with Django's commands behind.

`watchkeeper up|web|worker|scheduler|createuser|token|demo|...` runs the management command of
that name; anything else (migrate, shell, check, ...) is passed to Django unchanged.
"""

from __future__ import annotations

import os
import sys

ALIASES = {"enrollment-token": "enrollment_token", "mail-in": "mail_in", "agent-dist": "agent_dist"}


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "watchkeeper.settings")
    argv = list(sys.argv if argv is None else argv)
    argv[0] = "watchkeeper"
    # Django command names cannot contain hyphens; the documented spellings can.
    if len(argv) > 1 and argv[1] in ALIASES:
        argv[1] = ALIASES[argv[1]]
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
