"""`watchkeeper worker`: run background tasks with the configured django-tasks backend.

Database backend (default): django-tasks-db's worker, which claims each task row under a
row lock (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), so any number of workers on any
number of machines can run side by side. Redis (WATCHKEEPER_TASKS_URL=redis://...): an RQ
worker on the "default" queue with django-tasks-rq's job class. Either way a heartbeat
thread keeps this process's ProcessHeartbeat row fresh for /readyz.

The worker outlives its dependencies: a database or Redis error (an outage, a full disk)
is logged once, retried with backoff and jitter (up to 10 s), and work resumes when the
dependency is back. Tasks this worker had claimed when the error struck, and tasks of
workers that died (no heartbeat for WORKER_STALE_SECONDS), are put back in the queue
(core.tasks.recover_stale_tasks): a task runs at least once, so tasks are idempotent.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from watchkeeper.core.processes import Backoff, Heartbeat, is_dependency_error, process_name

log = logging.getLogger(__name__)


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
        self.stdout.flush()
        if backend not in ("django_tasks_rq.RQBackend", "django_tasks_db.DatabaseBackend"):
            self.stderr.write(f"the {backend} backend runs tasks in-process; "
                              "no worker is needed")
            return
        with Heartbeat("worker", name=name):
            if backend == "django_tasks_rq.RQBackend":
                run = self._rq_runner(queue, name, burst, max_tasks, verbosity)
            else:
                run = self._db_runner(queue, name, burst, max_tasks, interval)
            self._run_retrying(run, name, once=burst)

    def _run_retrying(self, run, name: str, once: bool) -> None:
        """Run until done; on a database or queue error wait (backoff, jitter) and again."""
        from watchkeeper.core.tasks import recover_stale_tasks

        backoff = Backoff(base=1.0, cap=10.0)
        down_since: float | None = None
        while True:
            try:
                if settings.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend":
                    # What this process or a dead one left RUNNING goes back in the queue.
                    recovered = recover_stale_tasks(own=name[:64])
                    if recovered:
                        log.warning("worker %s: put %s interrupted task(s) back in the "
                                    "queue", name, recovered)
                run()
                return
            except Exception as exc:
                if not is_dependency_error(exc) or once:
                    raise
                connection.close()
                if down_since is None or time.monotonic() - down_since > 60:
                    # One line per outage (and one a minute while it lasts).
                    down_since = time.monotonic()
                    first = (str(exc).strip().splitlines() or [""])[0][:200]
                    log.warning("worker %s: %s: %s; retrying with backoff", name,
                                type(exc).__name__, first)
                time.sleep(backoff.next_delay())
                close_old_connections()

    def _db_runner(self, queue, name, burst, max_tasks, interval):
        from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS
        from django_tasks_db.management.commands.db_worker import Worker

        worker = Worker(queue_names=queue.split(","), interval=interval, batch=burst,
                        backend_name=DEFAULT_TASK_BACKEND_ALIAS, startup_delay=not burst,
                        max_tasks=max_tasks, worker_id=name[:64], excluded_queue_names=[])
        worker.configure_signals()  # SIGTERM: finish the running task, then exit 0
        if threading.current_thread() is not threading.main_thread():  # pragma: no cover
            raise RuntimeError("the worker must run in the main thread")
        return worker.run

    def _rq_runner(self, queue, name, burst, max_tasks, verbosity):
        from django_rq.utils import reset_db_connections
        from django_rq.workers import get_worker

        attempt = 0

        def run():
            # A fresh RQ worker per attempt: after a Redis outage the old one's registration
            # may still be there, and RQ refuses a second worker of the same name.
            nonlocal attempt
            attempt += 1
            worker = get_worker(queue, job_class="django_tasks_rq.Job",
                                name=name if attempt == 1 else f"{name}~{attempt}")
            reset_db_connections()
            worker.work(burst=burst, max_jobs=max_tasks,
                        logging_level="DEBUG" if verbosity >= 2 else "WARNING")

        return run
