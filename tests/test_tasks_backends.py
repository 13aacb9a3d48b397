"""A real `watchkeeper worker` runs the outbox dispatch on each task backend.

Each test prepares a fresh SQLite data directory with real subprocesses (migrate, then a
`shell -c` that creates a webhook and a client through actions, which enqueues
dispatch_outbox on commit), then runs `watchkeeper worker --burst` and checks that the
webhook receiver — a real HTTP server in this process — got the signed event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_webhooks import Receiver
from watchkeeper.core import webhooks

SECRET = "backend-test-secret-0123456789"
SETUP = """
from watchkeeper.core import actions
actions.create_webhook(actor="test", name="backend probe", url={url!r}, secret={secret!r},
                       event_kinds=["client.created"])
actions.create_client(actor="test", name="Queue Test Dental", timezone="Europe/Paris")
"""


def run(env, *args, timeout=90) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "watchkeeper.cli", *args], env=env, capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def worker_delivers(tmp_path, tasks_url: str | None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("WATCHKEEPER_DATABASE_URL", "WATCHKEEPER_TASKS_URL")}
    env.update(WATCHKEEPER_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    if tasks_url:
        env["WATCHKEEPER_TASKS_URL"] = tasks_url
    receiver = Receiver()
    try:
        # given a migrated database, a webhook, and a client created through an action
        run(env, "migrate", "-v0")
        run(env, "shell", "-c", SETUP.format(url=receiver.url, secret=SECRET))
        # then nothing has been delivered yet: the work is waiting in the task queue
        assert receiver.requests == []

        # when a worker runs the queued tasks
        result = run(env, "worker", "--burst")

        # then the dispatch ran in the worker and the receiver got the signed event
        assert receiver.requests, result.stdout + result.stderr
        request = receiver.requests[-1]
        body = json.loads(request["body"])
        assert body["kind"] == "client.created"
        assert body["payload"]["repr"] == "Queue Test Dental"
        assert webhooks.verify(SECRET, request["body"],
                               request["headers"]["X-Watchkeeper-Signature"])
        return result
    finally:
        receiver.close()


def test_database_backend_worker_delivers_an_event(tmp_path):
    result = worker_delivers(tmp_path, tasks_url=None)
    assert "DatabaseBackend" in result.stdout


@pytest.mark.services
def test_redis_backend_worker_delivers_an_event(tmp_path):
    tasks_url = os.environ.get("WATCHKEEPER_TASKS_URL", "")
    if not tasks_url.startswith(("redis://", "rediss://")):
        pytest.skip("set WATCHKEEPER_TASKS_URL=redis://... to test the RQ backend")
    result = worker_delivers(tmp_path, tasks_url=own_redis_database(tasks_url))
    assert "RQBackend" in result.stdout


def own_redis_database(url: str) -> str:
    """A Redis database of the worker's own, emptied: the suite's process enqueues its own
    jobs (discovery scans, dispatches of other tests) into the shared one, and a burst
    worker would run them all, against a database where their rows do not exist."""
    from urllib.parse import urlsplit

    import redis

    parts = urlsplit(url)
    shared = int(parts.path.lstrip("/") or 0)
    own = parts._replace(path=f"/{15 if shared != 15 else 13}").geturl()
    redis.Redis.from_url(own).flushdb()
    return own
