"""Issue 19: the platform survives what production does to it (in-process tests; the fault
suite in faults/ kills real processes and stops a real PostgreSQL)."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from watchkeeper.core import accounts, events, webhooks
from watchkeeper.core.choices import DeliveryStatus, TokenScope
from watchkeeper.core.models import ApiToken, EventDelivery, WebhookDelivery
from watchkeeper.core.processes import (
    EXIT_CANNOT_START,
    Backoff,
    Supervisor,
    port_problem,
    run_retrying,
)

from .agent_harness import run_asgi

PY = sys.executable


def wait_until(predicate, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# --- 1. supervision: `up` never exits because a role died ----------------------------------

def test_supervisor_restarts_a_dying_child_reports_a_crash_loop_and_keeps_the_rest():
    # given a supervisor with one healthy role and one that dies at once, every time
    out = io.StringIO()
    supervisor = Supervisor(
        [("steady", [PY, "-c", "import time; print('steady up', flush=True); "
                               "time.sleep(600)"]),
         ("crashy", [PY, "-c", "import sys; print('crashy up', flush=True); sys.exit(3)"])],
        out=out, grace=5, restart_base=0.01, restart_cap=0.05, crash_loop=3)
    supervisor.start()
    steady_pid = supervisor.children[0].proc.pid
    waiter = threading.Thread(target=supervisor.wait)
    waiter.start()
    try:
        # when the crashing role has died a few times
        assert wait_until(lambda: supervisor.children[1].starts >= 4), out.getvalue()
    finally:
        supervisor.request_stop()
        waiter.join(timeout=30)

    # then it was restarted each time, the crash loop was reported once, and the healthy
    # role kept running the whole time (same process)
    text = out.getvalue()
    assert "exited with status 3" in text
    assert "restarted (pid" in text
    assert text.count("ERROR: crash loop") == 1, text
    assert supervisor.children[0].starts == 1
    assert supervisor.children[0].proc.pid == steady_pid
    assert "steady | stopped" in text


def test_a_role_that_cannot_start_says_why_in_one_line_and_waits_the_longest_backoff():
    out = io.StringIO()
    supervisor = Supervisor(
        [("mail-in", [PY, "-c", "from watchkeeper.core.processes import cannot_start; "
                                "cannot_start('mail-in', 'port 2525 is taken')"])],
        out=out, grace=5, restart_base=0.01, restart_cap=30)
    supervisor.start()
    waiter = threading.Thread(target=supervisor.wait)
    waiter.start()
    try:
        assert wait_until(lambda: "restarting in" in out.getvalue()), out.getvalue()
    finally:
        supervisor.request_stop()
        waiter.join(timeout=30)
    text = out.getvalue()
    assert supervisor.children[0].proc.returncode == EXIT_CANNOT_START
    assert "mail-in | mail-in: cannot start: port 2525 is taken" in text
    assert "Traceback" not in text
    assert "cannot start (see above)" in text
    assert "restarting in 30.0 s" in text


def test_port_problem_names_a_taken_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_problem("127.0.0.1", port) == (
            f"port {port} on 127.0.0.1 is already in use by another program")
    assert port_problem("127.0.0.1", port) is None


def test_a_role_loop_survives_database_errors_with_backoff_and_recovers(db):
    # given a role step that fails with database errors three times, then works
    calls = []
    stop = threading.Event()

    def step():
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise OperationalError("connection refused")
        if len(calls) >= 6:
            stop.set()

    # when the role loop runs it
    with mock.patch("watchkeeper.core.processes.log") as log:
        run_retrying("tester", step, stop, tick=0.001, backoff=Backoff(base=0.001, cap=0.01))

    # then it kept going through the errors, logged the outage once and the recovery once
    assert len(calls) == 6
    warnings = [c.args[0] for c in log.warning.call_args_list]
    assert warnings == ["%s: %s: %s; retrying with backoff", "%s: recovered after %.1f s"]


def test_a_role_loop_does_not_swallow_bugs(db):
    stop = threading.Event()

    def step():
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_retrying("tester", step, stop, tick=0.001)


DATABASE_QUEUE_ONLY = pytest.mark.skipif(
    os.environ.get("WATCHKEEPER_TASKS_URL", "").startswith("redis"),
    reason="the database task queue's own recovery (RQ requeues its jobs itself)")


@DATABASE_QUEUE_ONLY
def test_worker_retries_through_a_database_outage_and_requeues_what_it_had_claimed(
        db, monkeypatch):
    from django_tasks_db.compat import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from watchkeeper.core.management.commands.worker import Command
    from watchkeeper.core.tasks import prune_heartbeats

    # given a task this worker had claimed when the database went away
    result = prune_heartbeats.enqueue()
    row = DBTaskResult.objects.get(pk=result.id)
    row.claim("host:42")
    monkeypatch.setattr("watchkeeper.core.management.commands.worker.time.sleep",
                        lambda s: None)
    attempts = []

    def run():
        attempts.append(DBTaskResult.objects.get(pk=result.id).status)
        if len(attempts) < 3:
            raise OperationalError("server closed the connection unexpectedly")

    # when the worker's run fails twice with a database error, then works
    Command()._run_retrying(run, "host:42", once=False)

    # then it did not exit: it ran again each time, and the cut task went back to the queue
    assert len(attempts) == 3
    assert attempts[0] == TaskResultStatus.READY
    row.refresh_from_db()
    assert row.status == TaskResultStatus.READY


@DATABASE_QUEUE_ONLY
def test_stale_running_tasks_of_dead_workers_are_recovered_live_ones_are_not(db):
    from django_tasks_db.compat import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from watchkeeper.core.processes import beat
    from watchkeeper.core.tasks import prune_heartbeats, recover_stale_tasks

    # given a task claimed by a worker killed -9 (no heartbeat) and one by a live worker
    dead = DBTaskResult.objects.get(pk=prune_heartbeats.enqueue().id)
    dead.claim("host:dead")
    live = DBTaskResult.objects.get(pk=prune_heartbeats.enqueue().id)
    live.claim("host:live")
    beat("worker", "host:live")

    # when the recovery sweep runs
    assert recover_stale_tasks() == 1

    # then the dead worker's task is ready to run again, the live worker's is untouched
    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.status == TaskResultStatus.READY
    assert live.status == TaskResultStatus.RUNNING


# --- 2. one answer for "database unavailable": 503 + Retry-After -------------------------

@pytest.fixture
def database_down():
    """Every SQL statement from now on fails the way an unreachable database does."""

    def fail(*args, **kwargs):
        raise OperationalError("connection to server failed: Connection refused")

    with mock.patch("django.db.backends.utils.CursorWrapper.execute", fail), \
            mock.patch("django.db.backends.utils.CursorWrapper.executemany", fail):
        yield


def test_database_unavailable_is_503_with_retry_after_on_api_agent_and_pages(
        db, client, admin_user, settings, as_user):
    settings.AGENT_LEAN_CHECKIN = False
    _, raw = accounts.create_token(actor=admin_user, user=admin_user, name="r",
                                   scope=TokenScope.READ)
    page_client = as_user(admin_user)
    page_client.raise_request_exception = False
    client.raise_request_exception = False
    with mock.patch("django.db.backends.utils.CursorWrapper.execute",
                    side_effect=OperationalError("connection refused")):
        api = client.get("/api/v1/clients/", HTTP_AUTHORIZATION=f"Bearer {raw}")
        checkin = client.post("/agent/v1/checkin", data=b'{"seq": 1}',
                              content_type="application/json")
        page = page_client.get("/clients/")
    assert api.status_code == 503, api.content
    assert api["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    assert api["Content-Type"] == "application/problem+json"
    assert checkin.status_code == 503
    assert checkin.json()["code"] == "retry"
    assert checkin["Retry-After"]
    assert page.status_code == 503
    assert b"Temporarily unavailable" in page.content
    assert page["Retry-After"]


def test_other_server_errors_stay_500(db, client, monkeypatch):
    client.raise_request_exception = False
    with mock.patch("watchkeeper.core.views.health.JsonResponse",
                    side_effect=RuntimeError("a bug")):
        assert client.get("/healthz").status_code == 500


def test_read_only_api_call_survives_a_failing_last_used_write(db, client, admin_user):
    # given a token whose last-used time is due for an update, on a full disk
    _, raw = accounts.create_token(actor=admin_user, user=admin_user, name="r",
                                   scope=TokenScope.READ)
    real_update = type(ApiToken.objects.all()).update

    def full_disk(qs, **kwargs):
        if "last_used_at" in kwargs:
            raise OperationalError("database or disk is full")
        return real_update(qs, **kwargs)

    # when a read-only call comes in, then it answers 200 all the same
    with mock.patch.object(type(ApiToken.objects.all()), "update", full_disk):
        response = client.get("/api/v1/clients/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content


def test_readyz_reports_a_full_disk(db, client, monkeypatch, settings):
    from collections import namedtuple

    from watchkeeper.core.processes import beat

    beat("worker", "host:1")
    assert client.get("/readyz").status_code == 200
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("watchkeeper.core.views.health.shutil.disk_usage",
                        lambda path: usage(10**9, 10**9 - 5 * 2**20, 5 * 2**20))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["disk"] == {"ok": False, "free_mb": 5,
                                                 "min_free_mb": settings.DISK_MIN_FREE_MB}
    assert response["Retry-After"]


def test_readyz_sees_a_killed_worker_within_seconds(settings):
    # A killed worker stops beating; /readyz counts it alive for WORKER_STALE_SECONDS only,
    # a few heartbeats (it used to be 120 s).
    assert settings.WORKER_STALE_SECONDS <= 4 * settings.HEARTBEAT_SECONDS <= 30


# --- 3. request limits before reading ------------------------------------------------------

def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                        *headers]}


def test_a_declared_oversized_enroll_body_is_refused_before_any_byte_is_read(db):
    from watchkeeper.asgi import application

    reads = []
    scope = _scope("/agent/v1/enroll", [(b"content-length", str(50 * 2**20).encode())])

    class Counting(list):
        def pop(self, index=-1):
            reads.append(index)
            return super().pop(index)

    response = run_asgi(application, scope, Counting([
        {"type": "http.request", "body": b"x" * 1024, "more_body": True}]))
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert reads == []  # not one chunk was read


def test_a_streamed_body_is_cut_at_the_limit(db, settings):
    from watchkeeper.asgi import application

    settings.ENROLL_MAX_BODY_BYTES = 64 * 1024
    chunk = {"type": "http.request", "body": b"x" * 16 * 1024, "more_body": True}
    messages = [dict(chunk) for _ in range(3200)]  # 50 MB if it were all read
    response = run_asgi(application, _scope("/agent/v1/enroll", []), messages)
    assert response.status_code == 413
    assert len(messages) >= 3200 - 5  # stopped right after the limit


def test_anonymous_requests_get_the_small_limit_signed_in_ones_the_large(settings):
    from watchkeeper.core.limits import limit_for

    settings.ANON_MAX_BODY_BYTES = 1000
    settings.REQUEST_MAX_BODY_BYTES = 10**8
    anonymous = _scope("/login/", [])
    signed_in = _scope("/tickets/1/", [(b"cookie", b"sessionid=x")])
    assert limit_for(anonymous) == 1000
    assert limit_for(signed_in) == 10**8
    assert limit_for(_scope("/agent/v1/enroll", [])) == settings.ENROLL_MAX_BODY_BYTES


def test_a_client_that_stops_sending_its_body_gets_408(db, settings):
    from watchkeeper.asgi import application

    settings.BODY_IDLE_TIMEOUT = 0.2
    scope = _scope("/api/v1/clients/", [(b"content-length", b"1000"),
                                        (b"authorization", b"Bearer x")])
    # the first 100 bytes arrive, then nothing (run_asgi's receive then blocks for an hour)
    response = run_asgi(application, scope, [
        {"type": "http.request", "body": b"x" * 100, "more_body": True}])
    assert response.status_code == 408


# --- 4. outbox: lease per delivery, attempt logged before it is sent ----------------------

@pytest.fixture
def lease_handler():
    yield
    events._handlers.pop("tests.reliability.lease", None)


def test_each_delivery_gets_a_full_lease_from_its_own_claim(db, lease_handler):
    from tests.event_kinds import TestHappened

    # given two due deliveries, the first taking longer than a whole lease
    clock = {"now": timezone.now()}
    seen = []

    @events.subscribe("test.happened", name="tests.reliability.lease")
    def handle(event, name):
        if event.note == "slow":
            clock["now"] += events.LEASE + timedelta(minutes=1)
        else:
            seen.append(EventDelivery.objects.get(event__payload__note="second").locked_until)

    events.emit(TestHappened(note="slow"))
    events.emit(TestHappened(note="second"))
    EventDelivery.objects.update(next_attempt_at=clock["now"] - timedelta(seconds=5))

    # when one sweep delivers both, the clock moving on during the first
    with mock.patch("watchkeeper.core.events.timezone.now", lambda: clock["now"]):
        result = events.dispatch_due()
    errors = list(EventDelivery.objects.values_list("last_error", flat=True))
    assert result["delivered"] == 2, (result, errors)

    # then the second delivery's lease runs from its own claim, not from the sweep's start
    assert len(seen) == 1 and seen[0] > clock["now"]


def test_webhook_attempt_is_logged_before_the_request_is_sent(db, owner, client_a):
    from watchkeeper.core import actions

    actions.create_webhook(actor=owner, name="hook", url="http://127.0.0.1:9/hook",
                           secret="s" * 24, client=client_a, event_kinds=["site.created"])
    actions.create_site(actor=owner, client=client_a, name="Main")
    logged_before = []

    def killed_mid_send(url, **kwargs):
        logged_before.append(list(WebhookDelivery.objects.values_list("error", flat=True)))
        raise KeyboardInterrupt  # the worker dies here (kill -9 leaves the same rows)

    with mock.patch("watchkeeper.core.webhooks.httpx.post", killed_mid_send), \
            pytest.raises(KeyboardInterrupt):
        events.dispatch_due()
    assert logged_before == [[webhooks.INTERRUPTED]]
    attempt = WebhookDelivery.objects.get()
    assert attempt.error == webhooks.INTERRUPTED and attempt.success is False
    assert EventDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()


def test_up_writes_one_time_passwords_to_a_private_file(tmp_path, settings):
    import os
    import stat

    from watchkeeper.core.management.commands.up import write_password_file

    settings.DATA_DIR = tmp_path
    path = write_password_file("owner@localhost  s3cret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "owner@localhost  s3cret" in open(path).read()
    assert json.dumps(path)  # a plain path the console line can show


def test_readyz_reports_an_unreachable_redis_queue(db, client, settings):
    import socket

    from watchkeeper.core.processes import beat

    beat("worker", "host:1")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.TASKS_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["queue"] == {"ok": False, "error": "ConnectionError"}
