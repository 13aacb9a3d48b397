"""Exactly once under load (PostgreSQL): several dispatcher threads deliver the outbox
while results flow in; thousands of state changes, each notification sent exactly once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core import events
from watchkeeper.monitoring import actions
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import ChannelKind, NotificationStatus, State
from watchkeeper.monitoring.models import Alert, Notification

DEVICES = 250
ROUNDS = 4  # critical, ok, critical, ok: 1,000 state changes, 1,000 notifications


@pytest.fixture
def counting_hook():
    received: Counter = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                received[(body["alert"]["id"], body["event"]["kind"])] += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", received
    server.shutdown()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_each_notification_is_sent_exactly_once_with_several_dispatchers(
        owner, client_a, counting_hook):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent dispatchers need PostgreSQL (WATCHKEEPER_DATABASE_URL)")
    url, received = counting_hook
    # Given a check on many devices and a webhook channel
    _, check = disk_policy(owner)
    actions.create_channel(actor=owner, name="hook", kind=ChannelKind.WEBHOOK, url=url)
    devices = [make_device(client_a, f"ws-{i:04}") for i in range(DEVICES)]
    stop = threading.Event()
    errors: list = []

    def dispatcher():
        try:
            while not stop.is_set():
                if not events.dispatch_due(limit=50)["due"]:
                    stop.wait(0.05)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for t in threads:
        t.start()
    # When results flip every device's state ROUNDS times while four dispatchers run,
    # with two writers submitting overlapping halves of each round
    for n in range(ROUNDS):
        state = State.CRITICAL if n % 2 == 0 else State.OK
        batch = [CheckResult(check.pk, d.pk, client_a.pk, state) for d in devices]

        def write(part):
            try:
                record_results(part)
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        writers = [threading.Thread(target=write, args=(batch[: DEVICES * 2 // 3],)),
                   threading.Thread(target=write, args=(batch[DEVICES // 3:],))]
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=120)
    # Let the dispatchers drain the outbox
    for _ in range(600):
        if Notification.objects.filter(status=NotificationStatus.SENT).count() >= \
                DEVICES * ROUNDS:
            break
        stop.wait(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    # Then every alert opened and resolved twice, and each notification arrived once
    assert Alert.objects.count() == DEVICES * ROUNDS // 2
    assert sum(received.values()) == DEVICES * ROUNDS
    assert set(received.values()) == {1}
    assert Notification.objects.filter(status=NotificationStatus.SENT).count() == \
        DEVICES * ROUNDS
