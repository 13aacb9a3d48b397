"""Agent API ingestion: signatures, replay protection, validation with quarantine, fuzzed
payloads (always a 4xx with a reason, never a 5xx), and offline detection."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.agent_harness import asgi_post
from tests.factories import make_client
from watchkeeper.agents import actions, tasks
from watchkeeper.agents.choices import Connectivity
from watchkeeper.agents.models import Agent, AgentNonce, MetricSample, QuarantinedPayload
from watchkeeper.agents.protocol import canonical_request
from watchkeeper.core.models import Event, Site

CHECKIN = "/agent/v1/checkin"


class SignedAgent:
    """Sends signed check-ins through the Django view ("django") or through the ASGI
    application, where the lean path answers ordinary check-ins ("lean")."""

    def __init__(self, django_client, agent: Agent, key: Ed25519PrivateKey, mode: str):
        self.http, self.agent, self.key, self.mode = django_client, agent, key, mode

    def send(self, path: str, raw: bytes, headers: dict[str, str]):
        if self.mode == "lean":
            return asgi_post(path, raw, headers)
        meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        return self.http.generic("POST", path, raw, content_type="application/json", **meta)

    def post(self, body: bytes | dict, *, path: str = CHECKIN, ts: int | None = None,
             nonce: str | None = None, sign_body: bytes | None = None, key=None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        ts = int(time.time()) if ts is None else ts
        nonce = nonce or secrets.token_hex(16)
        message = canonical_request(method="POST", path=path, timestamp=ts, nonce=nonce,
                                    body=raw if sign_body is None else sign_body,
                                    agent_id=str(self.agent.uid))
        signature = base64.b64encode((key or self.key).sign(message)).decode()
        return self.send(path, raw, {"X-WK-Agent": str(self.agent.uid),
                                     "X-WK-Timestamp": str(ts), "X-WK-Nonce": nonce,
                                     "X-WK-Signature": signature})


def make_signed(client, mode: str, name: str = "Acme Dental") -> SignedAgent:
    acme = make_client(name)
    site = Site.objects.create(client=acme, name="HQ")
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    token, _ = actions.create_enrollment_token(actor="test", client=acme, site=site)
    agent = actions.enroll_agent(token=token, public_key=public, facts={"hostname": "pc-1"})
    agent = actions.approve_agent(actor="test", agent=agent)
    return SignedAgent(client, agent, key, mode)


@pytest.fixture(params=["django", "lean"])
def signed(request, client, db, settings):
    # "lean": the batch writer runs inline, in the test's transaction, one request a batch
    # (tests/test_agents_batch.py covers batches of many).
    settings.AGENT_BATCH_WRITER = "inline"
    settings.AGENT_LEAN_CHECKIN = request.param == "lean"
    return make_signed(client, request.param)


def metrics_batch(seq: int, **values) -> dict:
    return {"seq": seq, "metrics": {"ts": time.time(), "values": values or {"cpu.percent": 5}}}


def test_a_signed_check_in_is_stored_and_acknowledged(signed):
    response = signed.post(metrics_batch(1, **{"cpu.percent": 12.5, "disk.used_bytes:/": 9}))
    assert response.status_code == 200, response.content
    assert response.json()["ack_seq"] == 1 and response.json()["duplicate"] is False
    assert MetricSample.objects.count() == 2


@pytest.mark.parametrize("attack,code", [
    ("stale", "stale"), ("bad_signature", "bad_signature"), ("body_swapped", "bad_signature"),
    ("replay", "replay"), ("wrong_key", "bad_signature"), ("wrong_path", "bad_signature"),
])
def test_requests_that_fail_authentication_are_refused(signed, attack, code):
    # Given a valid request and a variant an attacker could send
    kwargs = {}
    if attack == "stale":
        kwargs["ts"] = int(time.time()) - 3600
    elif attack == "bad_signature":
        kwargs["key"] = Ed25519PrivateKey.generate()
    elif attack == "body_swapped":
        kwargs["sign_body"] = json.dumps(metrics_batch(99)).encode()
    elif attack == "wrong_key":
        kwargs["key"] = Ed25519PrivateKey.generate()
    elif attack == "wrong_path":
        response = signed.post(metrics_batch(1), path="/agent/v1/status")
        assert response.status_code == 200  # signed for /status ...
        kwargs["nonce"] = secrets.token_hex(16)
    if attack == "replay":
        nonce = secrets.token_hex(16)
        assert signed.post(metrics_batch(1), nonce=nonce).status_code == 200
        kwargs["nonce"] = nonce
        body = metrics_batch(2)
    else:
        body = metrics_batch(1)
    if attack == "wrong_path":
        # ... then the same signature material cannot be moved to /checkin
        raw = json.dumps(body).encode()
        ts, nonce = int(time.time()), secrets.token_hex(16)
        sig = base64.b64encode(signed.key.sign(canonical_request(
            method="POST", path="/agent/v1/status", timestamp=ts, nonce=nonce, body=raw,
            agent_id=str(signed.agent.uid)))).decode()
        response = signed.send(CHECKIN, raw, {
            "X-WK-Agent": str(signed.agent.uid), "X-WK-Timestamp": str(ts),
            "X-WK-Nonce": nonce, "X-WK-Signature": sig})
    else:
        response = signed.post(body, **kwargs)
    # Then it is refused with a reason and stores nothing
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert MetricSample.objects.filter(value=5).count() == (1 if attack == "replay" else 0)


def test_unsigned_request_is_refused_without_touching_the_database(signed):
    response = signed.send(CHECKIN, json.dumps(metrics_batch(1)).encode(), {})
    assert response.status_code == 401 and response.json()["code"] == "unsigned"
    assert AgentNonce.objects.count() == 0


@pytest.mark.parametrize("header,value", [
    ("X-WK-Agent", "not-a-uuid"), ("X-WK-Timestamp", "soon"), ("X-WK-Signature", "***"),
    ("X-WK-Nonce", "short"),
])
def test_malformed_signature_headers_are_refused(signed, header, value):
    headers = {"X-WK-Agent": str(signed.agent.uid), "X-WK-Timestamp": str(int(time.time())),
               "X-WK-Nonce": secrets.token_hex(16), "X-WK-Signature": "AAAA"}
    headers[header] = value
    response = signed.send(CHECKIN, json.dumps(metrics_batch(1)).encode(), headers)
    assert response.status_code == 401 and response.json()["code"] == "malformed_auth"
    assert AgentNonce.objects.count() == 0 and MetricSample.objects.count() == 0


@pytest.mark.parametrize("state,status,code", [
    ("revoked", 403, "revoked"), ("rejected", 403, "rejected"), ("pending", 403, "pending"),
    ("deleted", 401, "unknown_agent"),
])
def test_agents_not_approved_are_refused_and_store_nothing(signed, state, status, code):
    # Given an agent that is no longer (or not yet) allowed to report
    if state == "deleted":
        actions.delete_agent(actor="test", agent=signed.agent)
    elif state == "revoked":
        actions.revoke_agent(actor="test", agent=signed.agent)
    else:
        Agent.objects.filter(pk=signed.agent.pk).update(status=state)
    # When it checks in with a valid signature, then it is refused with the view's problem
    response = signed.post(metrics_batch(1))
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code and problem["instance"] == CHECKIN
    assert MetricSample.objects.count() == 0
    assert Agent.objects.filter(last_seq__gt=0).count() == 0


def test_a_body_over_the_size_limit_is_refused(signed, settings):
    settings.AGENT_MAX_BODY_BYTES = 200
    body = metrics_batch(1, **{f"m{i}": i for i in range(40)})
    response = signed.post(body)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert MetricSample.objects.count() == 0 and AgentNonce.objects.count() == 0


def test_both_paths_store_through_the_one_check_in_writer(client, db, settings, monkeypatch):
    from watchkeeper.agents.checkin import writer

    # Given the same agent state behind the Django view and the lean path
    settings.AGENT_BATCH_WRITER = "inline"
    stored = []
    real_store = writer.store
    monkeypatch.setattr(writer, "store", lambda entries, now: stored.append(len(entries)) or
                        real_store(entries, now))
    answers = {}
    for mode in ("django", "lean"):
        settings.AGENT_LEAN_CHECKIN = mode == "lean"
        signed = make_signed(client, mode, name=f"Acme {mode}")
        Agent.objects.filter(pk=signed.agent.pk).update(
            agent_version="1.0", inventory_hashes={"system": "ab" * 32})
        # When it reports a new version, then an older batch is replayed
        first = signed.post({**metrics_batch(1), "agent_version": "2.0", "dropped": {}})
        again = signed.post({**metrics_batch(1), "agent_version": "1.9"})
        bad = signed.post(metrics_batch(2), key=Ed25519PrivateKey.generate())
        answers[mode] = [(r.status_code, r.content) for r in (first, again, bad)]
        # Then the version moved forward once, the replay stored nothing
        agent = Agent.objects.get(pk=signed.agent.pk)
        assert (agent.agent_version, agent.last_seq) == ("2.0", 1)
        assert MetricSample.objects.filter(device_id=agent.device_id).count() == 1
    # And both paths answered the same bytes, each check-in stored by the one writer
    assert answers["django"] == answers["lean"]
    assert answers["lean"][0][0] == 200 and answers["lean"][1][0] == 200
    assert stored == [1, 1, 1, 1]


def test_a_replayed_sequence_number_is_acknowledged_but_not_stored_twice(signed):
    assert signed.post(metrics_batch(1)).json()["duplicate"] is False
    again = signed.post(metrics_batch(1))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert MetricSample.objects.count() == 1


def test_malformed_payload_is_refused_with_reasons_and_quarantined(signed):
    # Given a batch whose software section has a wrong type deep inside
    body = {"seq": 1, "inventory": {"hashes": {}, "sections": {
        "software": [{"name": "bash", "version": "5"}, {"name": 7}]}}}
    # When it is sent
    response = signed.post(body)
    # Then it is a 400 naming the field, stored nowhere but in quarantine
    assert response.status_code == 400
    assert "inventory.sections.software[1].name: expected str" in response.json()["errors"]
    quarantined = QuarantinedPayload.objects.get()
    assert quarantined.agent_id == signed.agent.pk and '"name": 7' in quarantined.body
    signed.agent.refresh_from_db()
    assert signed.agent.last_seq == 0


def test_nul_characters_are_refused_not_stored(signed):
    # PostgreSQL text cannot hold NUL: such a payload is a 400, never a failed write.
    body = {"seq": 1, "inventory": {"sections": {"software": [
        {"name": "evil\u0000pkg", "version": "1"}]}}}
    response = signed.post(json.dumps(body).encode())
    assert response.status_code == 400
    assert "NUL" in response.json()["errors"][0]
    assert QuarantinedPayload.objects.count() == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)
section_names = st.sampled_from(["system", "disks", "interfaces", "software", "services",
                                 "users", "logged_in", "ports", "updates", "bogus"])
batches = st.fixed_dictionaries({}, optional={
    "seq": st.one_of(st.integers(min_value=-5, max_value=2**64), json_values),
    "metrics": st.one_of(json_values, st.fixed_dictionaries({
        "ts": st.one_of(st.floats(), st.integers(), json_values),
        "values": st.dictionaries(st.text(max_size=10), st.one_of(st.floats(), json_values),
                                  max_size=4)})),
    "inventory": st.one_of(json_values, st.fixed_dictionaries({
        "hashes": st.dictionaries(section_names, st.text(max_size=64), max_size=3),
        "sections": st.dictionaries(section_names, json_values, max_size=3)})),
    "results": st.one_of(json_values, st.lists(st.dictionaries(
        st.sampled_from(["id", "status", "exit_code", "stdout", "duration_ms", "truncated"]),
        json_values, max_size=6), max_size=3)),
    "dropped": json_values,
    "agent_version": json_values,
})


@hsettings(max_examples=150, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(batches, json_values))
def test_fuzzed_check_ins_never_cause_a_server_error(signed, body):
    response = signed.post(body)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        problem = response.json()
        assert problem["detail"] and problem["code"]


@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_fuzzed_bytes_never_cause_a_server_error(signed, raw):
    response = signed.post(raw)
    assert 400 <= response.status_code < 500 or response.status_code == 200
    if response.status_code >= 400:
        assert response.json()["detail"]


@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_fuzzed_enrollment_never_causes_a_server_error(client, db, body):
    response = client.post("/agent/v1/enroll", json.dumps(body),
                           content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.json()["detail"]


def test_offline_sweep_claims_each_transition_once_and_online_comes_back(signed):
    # Given an agent that checked in and then went quiet past its due time
    assert signed.post(metrics_batch(1)).status_code == 200
    Agent.objects.filter(pk=signed.agent.pk).update(
        next_due_at=timezone.now() - timedelta(seconds=1))
    # When the sweep runs twice (as two schedulers might)
    assert tasks.sweep_offline() == 1
    assert tasks.sweep_offline() == 0
    # Then exactly one agent.offline event exists and the agent is offline
    assert Event.objects.filter(kind="agent.offline").count() == 1
    assert Agent.objects.get(pk=signed.agent.pk).connectivity == Connectivity.OFFLINE
    # When it checks in again, then it is online with one agent.online event more
    signed.agent.refresh_from_db()
    assert signed.post(metrics_batch(2)).status_code == 200
    assert Agent.objects.get(pk=signed.agent.pk).connectivity == Connectivity.ONLINE
    assert Event.objects.filter(kind="agent.online").count() == 2


def test_periodic_jobs_are_registered_and_prune_old_rows(signed, settings):
    from watchkeeper.agents.models import MetricName
    from watchkeeper.core import scheduler

    # Given the scheduler's discovery, the agents' jobs are registered
    scheduler.discover()
    assert {"agents.offline_sweep", "agents.prune"} <= set(scheduler.registered())
    # Given an expired nonce and a sample older than the retention
    settings.METRIC_RETENTION_DAYS = 7
    assert signed.post(metrics_batch(1)).status_code == 200
    AgentNonce.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    metric = MetricName.objects.get(name="cpu.percent")
    MetricSample.objects.create(device_id=signed.agent.device_id, metric=metric,
                                ts=timezone.now() - timedelta(days=8), value=1.0)
    # When the prune job runs, then only the old rows are gone
    result = tasks.agents_prune.call()
    assert result == {"nonces": 1, "samples": 1}
    assert MetricSample.objects.count() == 1
