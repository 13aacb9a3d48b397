"""The batch writer of the lean check-in path (agents/checkin/batch.py): many agents' check-ins in
one transaction, replays inside a batch, revocation between verify and write, a failed
transaction, and the events the check-in path emits."""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.utils import timezone

from tests.factories import make_client
from watchkeeper.agents import actions
from watchkeeper.agents.checkin import auth, batch
from watchkeeper.agents.choices import Connectivity
from watchkeeper.agents.models import Agent, AgentNonce, MetricSample
from watchkeeper.agents.protocol import (
    HEADER_AGENT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    canonical_request,
)
from watchkeeper.core.models import Event, Site

CHECKIN = "/agent/v1/checkin"


@pytest.fixture
def fleet(db):
    """make(n) -> [(agent, key)]: approved agents of one client, seen online."""
    client = make_client("Fleet Ltd")
    site = Site.objects.create(client=client, name="DC")
    token, _ = actions.create_enrollment_token(actor="test", client=client, site=site,
                                               auto_approve=True)

    def make(n: int):
        out = []
        for _ in range(n):
            key = Ed25519PrivateKey.generate()
            public = base64.b64encode(key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
            agent = actions.enroll_agent(token=token, public_key=public, facts={})
            out.append((agent, key))
        return out

    return make


def item(agent: Agent, key, seq: int, *, nonce: str | None = None, value: float = 1.0,
         **extra) -> batch.CheckinItem:
    body = json.dumps({"seq": seq, "metrics": {"ts": time.time() + seq,
                                               "values": {"cpu.percent": value,
                                                          "mem.percent": value}},
                       **extra}).encode()
    ts, nonce = int(time.time()), nonce or secrets.token_hex(16)
    signature = base64.b64encode(key.sign(canonical_request(
        method="POST", path=CHECKIN, timestamp=ts, nonce=nonce, body=body,
        agent_id=str(agent.uid)))).decode()
    headers = auth.parse_headers({HEADER_AGENT: str(agent.uid), HEADER_TIMESTAMP: str(ts),
                                  HEADER_NONCE: nonce, HEADER_SIGNATURE: signature})
    return batch.CheckinItem(headers=headers, method="POST", path=CHECKIN, body=body,
                             batch=json.loads(body), ip="192.0.2.7")


def samples(agent: Agent) -> int:
    return MetricSample.objects.filter(device_id=agent.device_id).count()


def test_many_agents_are_written_in_one_transaction(fleet, django_assert_max_num_queries):
    # Given 40 agents each sending a fresh batch
    agents = fleet(40)
    Agent.objects.update(connectivity=Connectivity.ONLINE, last_seen_at=timezone.now())
    items = [item(a, k, 1, value=n) for n, (a, k) in enumerate(agents)]
    # When the writer processes them as one batch (one SELECT of the agents, then the
    # nonce INSERT, the seq UPDATE, the metric names, the samples INSERT, and the
    # savepoint around them)
    with django_assert_max_num_queries(10):
        batch.process(items)
    # Then every one is acknowledged and stored exactly once, with its last_seq and IP
    assert [i.outcome[0] for i in items] == ["ok"] * 40
    assert all(i.outcome[1]["ack_seq"] == 1 and i.outcome[1]["duplicate"] is False
               for i in items)
    assert MetricSample.objects.count() == 80 and AgentNonce.objects.count() == 40
    assert set(Agent.objects.values_list("last_seq", "last_ip")) == {(1, "192.0.2.7")}


def test_a_replay_inside_one_batch_is_refused(fleet):
    # Given two requests of one agent with the same nonce, in the same batch
    [(agent, key)] = fleet(1)
    nonce = secrets.token_hex(16)
    first, replay = item(agent, key, 1, nonce=nonce), item(agent, key, 1, nonce=nonce)
    other = item(agent, key, 2)  # and another check-in of the same agent, fresh
    batch.process([first, replay, other])
    # Then the first is stored, the replay is refused as a replay, the other is stored
    assert first.outcome[0] == "ok" and first.outcome[1]["duplicate"] is False
    assert replay.outcome[0] == "problem" and replay.outcome[1].code == "replay"
    assert other.outcome[0] == "ok" and other.outcome[1]["ack_seq"] == 2
    assert samples(agent) == 4


def test_an_agent_revoked_between_verify_and_write_is_refused(fleet):
    # Given two agents whose requests verified
    (agent, key), (other, other_key) = fleet(2)
    items = [item(agent, key, 1), item(other, other_key, 1)]
    to_write = batch.verify(items)
    assert len(to_write) == 2
    # When one is revoked (and its commands cancelled) before the batch is written
    actions.revoke_agent(actor="test", agent=agent)
    for it, outcome in batch.write(to_write):
        it.outcome = outcome
    # Then it is refused as revoked and stores nothing; the other is stored
    assert items[0].outcome[0] == "problem" and items[0].outcome[1].code == "revoked"
    assert items[0].outcome[1].status == 403
    assert samples(agent) == 0 and Agent.objects.get(pk=agent.pk).last_seq == 0
    assert items[1].outcome[0] == "ok" and samples(other) == 2


def test_an_agent_deleted_between_verify_and_write_does_not_fail_the_batch(fleet):
    (agent, key), (other, other_key) = fleet(2)
    items = [item(agent, key, 1), item(other, other_key, 1)]
    to_write = batch.verify(items)
    actions.delete_agent(actor="test", agent=agent)
    for it, outcome in batch.write(to_write):
        it.outcome = outcome
    assert items[0].outcome[0] == "problem" and items[0].outcome[1].code == "unknown_agent"
    assert items[1].outcome[0] == "ok" and samples(other) == 2


def _fail_sample_inserts():
    """A real failure inside the transaction: the database refuses sample rows."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE FUNCTION wk_test_refuse() RETURNS trigger AS $$ BEGIN "
                           "RAISE EXCEPTION 'forced failure'; END $$ LANGUAGE plpgsql")
            cursor.execute("CREATE TRIGGER wk_test_refuse BEFORE INSERT ON "
                           "agents_metricsample FOR EACH ROW EXECUTE FUNCTION "
                           "wk_test_refuse()")
        else:
            cursor.execute("CREATE TRIGGER wk_test_refuse BEFORE INSERT ON "
                           "agents_metricsample BEGIN SELECT RAISE(ABORT, 'forced'); END")


def _allow_sample_inserts():
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER wk_test_refuse" + (
            " ON agents_metricsample" if connection.vendor == "postgresql" else ""))


def test_a_failed_transaction_answers_retry_to_every_waiter_and_writes_nothing(fleet):
    # Given 5 agents, one of them offline (its check-in would emit agent.online)
    agents = fleet(5)
    Agent.objects.update(connectivity=Connectivity.ONLINE)
    Agent.objects.filter(pk=agents[0][0].pk).update(connectivity=Connectivity.OFFLINE)
    events_before = Event.objects.filter(kind="agent.online").count()
    items = [item(a, k, 1) for a, k in agents]
    # When the batch transaction fails
    _fail_sample_inserts()
    try:
        batch.process(items)
    finally:
        _allow_sample_inserts()
    # Then every waiter is told to retry, and nothing of the batch was kept
    assert [i.outcome for i in items] == [("retry", None)] * 5
    assert MetricSample.objects.count() == 0 and AgentNonce.objects.count() == 0
    assert set(Agent.objects.values_list("last_seq", flat=True)) == {0}
    assert Event.objects.filter(kind="agent.online").count() == events_before
    # When the agents send the same batches again (new requests, same seq), all is stored
    again = [item(a, k, 1) for a, k in agents]
    batch.process(again)
    assert [i.outcome[1]["duplicate"] for i in again] == [False] * 5
    assert MetricSample.objects.count() == 10
    assert Event.objects.filter(kind="agent.online").count() == events_before + 1


def test_offline_agent_comes_online_once_with_its_event(fleet):
    (agent, key), (online, online_key) = fleet(2)
    Agent.objects.filter(pk=agent.pk).update(connectivity=Connectivity.OFFLINE)
    Agent.objects.filter(pk=online.pk).update(connectivity=Connectivity.ONLINE)
    before = Event.objects.filter(kind="agent.online").count()
    batch.process([item(agent, key, 1), item(online, online_key, 1)])
    batch.process([item(agent, key, 2)])
    events = Event.objects.filter(kind="agent.online").order_by("id")
    assert events.count() == before + 1
    assert events.last().payload == {"id": agent.pk, "uid": str(agent.uid),
                                     "device_id": agent.device_id}
    assert Agent.objects.get(pk=agent.pk).connectivity == Connectivity.ONLINE


@pytest.mark.parametrize("case", ["commands_waiting", "new_drops", "pending"])
def test_check_ins_the_lean_path_leaves_to_django_write_nothing(fleet, case):
    # Given an agent whose check-in needs the Django view (or that waits for approval)
    [(agent, key)] = fleet(1)
    extra = {}
    if case == "commands_waiting":
        Agent.objects.filter(pk=agent.pk).update(commands_waiting=True)
    elif case == "new_drops":
        extra = {"dropped": {"metrics": 3}}
    else:
        Agent.objects.filter(pk=agent.pk).update(status="pending")
    it = item(agent, key, 1, **extra)
    batch.process([it])
    if case == "pending":
        # Then a pending agent is told to wait; its nonce is spent, as in the Django view
        assert it.outcome[0] == "problem" and it.outcome[1].code == "pending"
        assert AgentNonce.objects.count() == 1
    else:
        # Then it is handed back before any write: no nonce, so Django checks it afresh
        assert it.outcome == ("handoff", None)
        assert AgentNonce.objects.count() == 0
    assert MetricSample.objects.count() == 0


def test_a_new_agent_version_is_stored_by_the_batch_not_handed_to_django(fleet):
    # Given a fleet upgrade: two agents report a new version, a third reports none
    (upgraded, key), (also, also_key), (silent, silent_key) = fleet(3)
    Agent.objects.filter(pk=silent.pk).update(agent_version="1.0")
    items = [item(upgraded, key, 1, agent_version="2.0"),
             item(also, also_key, 1, agent_version="2.0"), item(silent, silent_key, 1)]
    batch.process(items)
    # Then all three are stored on the lean path, each with the version it reported
    assert [i.outcome[0] for i in items] == ["ok"] * 3
    assert dict(Agent.objects.values_list("pk", "agent_version")) == {
        upgraded.pk: "2.0", also.pk: "2.0", silent.pk: "1.0"}
    # And a replayed old batch does not move the version back
    stale = item(upgraded, key, 1, agent_version="1.9")
    batch.process([stale])
    assert stale.outcome[1]["duplicate"] is True
    assert Agent.objects.get(pk=upgraded.pk).agent_version == "2.0"


def test_a_bad_signature_in_a_batch_refuses_only_that_request(fleet):
    (agent, key), (other, other_key) = fleet(2)
    forged = item(agent, Ed25519PrivateKey.generate(), 1)
    good = item(other, other_key, 1)
    batch.process([forged, good])
    assert forged.outcome[0] == "problem" and forged.outcome[1].code == "bad_signature"
    assert good.outcome[0] == "ok" and samples(other) == 2 and samples(agent) == 0


# --- Back-pressure of the writer thread (no database: process() is held at a gate) ---------

def _queued(body: bytes = b"{}") -> batch.CheckinItem:
    return batch.CheckinItem(headers=None, method="POST", path=CHECKIN, body=body, batch={},
                             ip=None)


@pytest.fixture
def gated(monkeypatch):
    """process() waits at a gate, then answers every item 'ok'."""
    import threading

    gate = threading.Event()

    def held(items):
        gate.wait(10)
        for item in items:
            item.outcome = ("ok", {"stored": True})

    monkeypatch.setattr(batch, "process", held)
    yield gate
    gate.set()


def test_a_full_queue_answers_retry_at_once_and_frees_its_places_after(gated):
    import asyncio

    writer = batch.BatchWriter(max_batch=10, wait_ms=0, max_items=2, max_bytes=10**6,
                               timeout_s=10)

    async def scenario():
        held = [asyncio.create_task(writer.submit(_queued())) for _ in range(2)]
        await asyncio.sleep(0)
        assert writer.in_flight == 2
        refused = await writer.submit(_queued())      # the queue is full: no waiting
        gated.set()
        answered = await asyncio.gather(*held)
        return refused, answered, await writer.submit(_queued())

    refused, answered, later = asyncio.run(scenario())
    assert refused == ("retry", None) and writer.refused == 1
    assert [a[0] for a in answered] == ["ok", "ok"] and later[0] == "ok"
    assert (writer.in_flight, writer.in_flight_bytes) == (0, 0)


def test_the_byte_bound_refuses_a_body_that_would_pass_it(gated):
    import asyncio

    writer = batch.BatchWriter(max_batch=10, wait_ms=0, max_items=100, max_bytes=10,
                               timeout_s=10)

    async def scenario():
        first = asyncio.create_task(writer.submit(_queued(b"x" * 6)))
        await asyncio.sleep(0)
        second = await writer.submit(_queued(b"y" * 6))  # 12 bytes > 10
        gated.set()
        return second, await first

    second, first = asyncio.run(scenario())
    assert second == ("retry", None) and first[0] == "ok"
    assert writer.in_flight_bytes == 0


def test_a_request_waits_for_the_writer_only_so_long(gated):
    import asyncio

    writer = batch.BatchWriter(max_batch=10, wait_ms=0, max_items=10, max_bytes=10**6,
                               timeout_s=0.05)
    assert asyncio.run(writer.submit(_queued())) == ("retry", None)
    assert writer.timed_out == 1
    # The writer still finishes that item and gives its place back
    gated.set()
    deadline = time.monotonic() + 10
    while writer.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.in_flight == 0
