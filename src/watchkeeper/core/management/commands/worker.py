"""`watchkeeper worker`: run background tasks with the configured django-tasks backend.

Database backend (default): django-tasks-db's worker, which claims each task row under a
row lock (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), so any number of workers on any
number of machines can run side by side. Redis (WATCHKEEPER_TASKS_URL=redis://...): an RQ
worker on the "default" queue with django-tasks-rq's job class. Either way a heartbeat
thread keeps this process's ProcessHeartbeat row fresh for /readyz.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from watchkeeper.core.processes import Heartbeat, process_name


class Command(BaseCommand):
    help = "Run a background worker (database or Redis task queue, per configuration)."

    def add_arguments(self, parser):
        parser.add_argument("--queue", default="default",
                            help="Queue to work on (default: %(default)s).")
        parser.add_argument("--burst", action="store_true",
                            help="Run the tasks that are queued now, then exit.")
        parser.add_argument("--max-tasks", type=int, default=None,
                            help="Exit after running this many tasks.")
        parser.add_argument("--interval", type=float, default=1.0,
                            help="Database backend: seconds between polls when idle.")

    def handle(self, *args, queue, burst, max_tasks, interval, verbosity, **options):
        name = process_name()
        backend = settings.TASKS["default"]["BACKEND"]
        self.stdout.write(f"worker {name}: backend {backend.rsplit('.', 1)[-1]}, "
                          f"queue {queue!r}")
        with Heartbeat("worker", name=name):
            if backend == "django_tasks_rq.RQBackend":
                rq_options = {"job_class": "django_tasks_rq.Job", "name": name,
                              "burst": burst, "verbosity": verbosity}
                if max_tasks:
                    rq_options["max_jobs"] = max_tasks
                call_command("rqworker", queue, **rq_options)
            elif backend == "django_tasks_db.DatabaseBackend":
                db_options = {"queue_name": queue, "interval": interval, "batch": burst,
                              "reload": False, "worker_id": name[:64],
                              "verbosity": verbosity}
                if max_tasks:
                    db_options["max_tasks"] = max_tasks
                call_command("db_worker", **db_options)
            else:
                self.stderr.write(f"the {backend} backend runs tasks in-process; "
                                  "no worker is needed")
