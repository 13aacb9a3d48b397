"""The real agent against the real server, on this machine.

Given a server (the Django app on a loopback port) and the `watchkeeper-agent` CLI run as a
separate process, these tests walk enrollment, approval, reporting, spooling through an
outage, replay, signed scripts and every way a command must be refused.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone

from tests.agent_harness import AgentCLI, LoopbackServer
from tests.factories import make_client
from watchkeeper.agents import actions
from watchkeeper.agents.choices import AgentStatus, CommandStatus, RunStatus, TargetKind
from watchkeeper.agents.commands import signer
from watchkeeper.agents.models import Agent, Command, MetricName, MetricSample
from watchkeeper.core.models import Event, Site

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server():
    srv = LoopbackServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def signer_key(tmp_path, settings):
    settings.SIGNER_KEY_FILE = str(tmp_path / "signer" / "ed25519.key")
    key = signer.load_or_create_key()
    actions.register_signer_key(actor="signer", public_key_raw=signer.public_bytes(key))
    return key


@pytest.fixture
def site(db):
    client = make_client("Acme Dental")
    return Site.objects.create(client=client, name="Main office")


@pytest.fixture
def make_agent(tmp_path, server, signer_key, site):
    """enroll(approve=True) -> (AgentCLI, Agent): a real agent enrolled into `site`."""
    counter = iter(range(100))

    def _make(*, approve: bool = True, auto: bool = False, spool_bytes: int | None = None,
              target_site=None):
        cli = AgentCLI(tmp_path / f"agent{next(counter)}", spool_bytes=spool_bytes)
        target = target_site or site
        _, raw = actions.create_enrollment_token(actor="test", client=target.client,
                                                 site=target, auto_approve=auto)
        result = cli.enroll(server.url, raw)
        assert result.returncode == 0, result.stderr
        agent = Agent.objects.get(uid=cli.agent_id)
        if approve and not auto:
            agent = actions.approve_agent(actor="test", agent=agent)
        return cli, agent

    return _make


def metric_count(agent: Agent, name: str = "cpu.percent") -> int:
    metric = MetricName.objects.filter(name=name).first()
    if metric is None:
        return 0
    return MetricSample.objects.filter(device_id=agent.device_id, metric=metric).count()


# --- enrollment and identity ----------------------------------------------------------------

def test_enrolled_agent_waits_in_quarantine_until_approved_then_reports(make_agent):
    # Given a freshly enrolled agent
    cli, agent = make_agent(approve=False)
    assert agent.status == AgentStatus.PENDING and agent.device_id is None
    # When it checks in before approval, then it is told to wait and nothing is stored
    waiting = cli.once()
    assert waiting.returncode == 3 and waiting.json["outcome"] == "pending"
    assert MetricSample.objects.count() == 0
    # When a technician approves it and it checks in with its inventory
    agent = actions.approve_agent(actor="test", agent=agent)
    done = cli.once(inventory="always")
    # Then the device exists with the agent's inventory, and the metrics are stored
    assert done.returncode == 0, done.stderr
    assert done.json["spooled"] == 0
    agent.refresh_from_db()
    device = agent.device
    assert device.os_name == "Debian GNU/Linux"
    assert device.hostname and device.agent_ref == str(agent.uid)
    assert {s.section for s in device.sections.all()} >= {"system", "software", "interfaces",
                                                          "disks", "users", "updates"}
    assert device.software.filter(name="bash").exists()
    assert metric_count(agent) == 2  # the pre-approval batch was replayed, not lost
    assert metric_count(agent, "mem.percent") == 2
    assert set(agent.inventory_hashes) >= {"system", "software"}
    assert agent.connectivity == "online"
    assert Event.objects.filter(kind="agent.online").count() == 1


def test_identity_is_the_key_not_the_hostname(make_agent):
    # Given an approved agent on this machine, and a second agent on the same host name
    old_cli, old = make_agent()
    new_cli, new = make_agent(approve=False)
    # Then they are two agents with different keys, and the newcomer is pending
    assert old.hostname == new.hostname and old.public_key != new.public_key
    assert new.status == AgentStatus.PENDING
    # When the newcomer is approved, it gets a device of its own, not the old one's
    new = actions.approve_agent(actor="test", agent=new)
    assert new.device_id != old.device_id


def test_auto_approve_token_and_expired_or_revoked_tokens(make_agent, server, site, tmp_path):
    # Given an auto-approving token, the agent is approved at enrollment
    _, agent = make_agent(auto=True)
    assert agent.status == AgentStatus.APPROVED and agent.device_id
    # Given an expired token and a revoked one, enrollment is refused
    token, raw = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    token.__class__.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    refused = AgentCLI(tmp_path / "late").enroll(server.url, raw)
    assert refused.returncode == 4 and "expired" in refused.stderr
    token2, raw2 = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    actions.revoke_enrollment_token(actor="test", token=token2)
    assert AgentCLI(tmp_path / "revoked").enroll(server.url, raw2).returncode == 4
    assert Agent.objects.count() == 1


def test_plain_http_server_is_refused_without_insecure(server, site, signer_key, tmp_path):
    # Given a token and a server reachable only over plain http (the loopback test server)
    token, raw = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    cli = AgentCLI(tmp_path / "plain")
    # When the agent enrolls without --insecure
    refused = cli.enroll(server.url, raw, insecure=False)
    # Then it refuses before sending the token, and saves nothing
    assert refused.returncode == 2 and "--insecure" in refused.stderr
    assert not (tmp_path / "plain" / "enrollment.json").exists()
    token.refresh_from_db()
    assert token.uses == 0 and not Agent.objects.exists()
    # And with --insecure it enrolls, and keeps using that server afterwards
    assert cli.enroll(server.url, raw).returncode == 0
    assert json.loads((tmp_path / "plain" / "enrollment.json").read_text())["insecure"] is True


def test_signer_fingerprint_is_checked_at_enrollment(server, site, signer_key, tmp_path):
    # Given the install command of a new token, which names the signer key's fingerprint
    _, raw = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    command = actions.install_command(raw).split()
    fingerprint = command[command.index("--signer-fingerprint") + 1]
    # When an agent enrolls expecting another key (a server or proxy swapped it)
    wrong = AgentCLI(tmp_path / "wrong").enroll(server.url, raw, "--signer-fingerprint",
                                                "ab" * 32)
    # Then enrollment fails and no key is pinned
    assert wrong.returncode == 6 and "fingerprint" in wrong.stderr
    assert not (tmp_path / "wrong" / "enrollment.json").exists()
    # And with the fingerprint from the install command it enrolls and pins that key
    ok = AgentCLI(tmp_path / "right").enroll(server.url, raw, "--signer-fingerprint",
                                             fingerprint.upper())
    assert ok.returncode == 0, ok.stderr
    pinned = json.loads((tmp_path / "right" / "enrollment.json").read_text())
    assert base64.b64decode(pinned["signer_public_key"]) == signer.public_bytes(signer_key)
    # And a malformed fingerprint is refused before anything is sent
    bad = AgentCLI(tmp_path / "bad").enroll(server.url, raw, "--signer-fingerprint", "xyz")
    assert bad.returncode == 2 and not (tmp_path / "bad" / "enrollment.json").exists()


def test_revoked_or_deleted_agent_is_refused_at_once(make_agent):
    # Given two approved agents that check in fine
    cli, agent = make_agent()
    cli2, agent2 = make_agent()
    assert cli.once().returncode == 0 and cli2.once().returncode == 0
    # When one is revoked and the other deleted
    actions.revoke_agent(actor="test", agent=agent)
    actions.delete_agent(actor="test", agent=agent2)
    # Then their very next requests are refused, and nothing more is stored
    before = MetricSample.objects.count()
    revoked = cli.once()
    assert revoked.returncode == 3 and revoked.json["outcome"] == "revoked"
    deleted = cli2.once()
    assert deleted.returncode == 3 and deleted.json["outcome"] == "unknown_agent"
    assert MetricSample.objects.count() == before


def test_service_loop_checks_in_on_its_interval_and_stops_on_sigterm(make_agent, settings):
    import signal
    import subprocess

    from tests.agent_harness import AGENT_BIN

    # Given an approved agent told to check in every 2 seconds
    settings.AGENT_INTERVAL = 2
    settings.AGENT_INVENTORY_INTERVAL = 3600
    cli, agent = make_agent()
    # When its service loop runs for a while
    proc = subprocess.Popen([AGENT_BIN, "--state-dir", str(cli.state_dir), "run"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and metric_count(agent) < 3:
            time.sleep(0.5)
        # Then it reported repeatedly, and SIGTERM ends it promptly
        assert metric_count(agent) >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert "running against" in (cli.state_dir / "agent.log").read_text()


# --- spooling and replay ----------------------------------------------------------------------

def test_outage_is_spooled_and_replayed_in_order_without_loss_or_duplicates(make_agent, server):
    # Given an approved agent that reported once
    cli, agent = make_agent()
    assert cli.once(inventory="always").returncode == 0
    # When the server is down for three check-ins (the second also collecting inventory)
    server.stop()
    assert cli.once().json["outcome"] == "unreachable"
    assert cli.once(inventory="always").json["outcome"] == "unreachable"
    assert cli.once().json["outcome"] == "unreachable"
    status = cli.status()
    assert status["spooled_batches"] == {"metrics": 3, "inventory": 1, "results": 0}
    # Then the spooled inventory batch holds only the sections that changed (hash delta)
    spooled = sorted((cli.state_dir / "spool").glob("*-inventory.json"))
    sections = json.loads(spooled[0].read_text())["inventory"]["sections"]
    assert "software" not in sections and "system" not in sections
    # When the server is back
    server.start()
    result = cli.once()
    # Then every batch is delivered, in order, each stored exactly once
    assert result.returncode == 0 and result.json["sent"] == 5
    assert metric_count(agent) == 5
    samples = list(MetricSample.objects.filter(
        device_id=agent.device_id, metric__name="cpu.percent").values_list("ts", flat=True))
    assert len(set(samples)) == 5
    agent.refresh_from_db()
    assert agent.last_seq == cli.status()["next_seq"] - 1
    assert agent.spool_dropped == {}


def test_a_replayed_batch_is_acknowledged_but_not_stored_twice(make_agent, server):
    # Given an agent whose batch 1 was stored
    cli, agent = make_agent()
    assert cli.once().returncode == 0
    stored = metric_count(agent)
    # When the same sequence number arrives again (a retry after a lost acknowledgement)
    from watchkeeper_agent.state import State
    from watchkeeper_agent.transport import Transport

    state = State(cli.state_dir)
    batch = {"seq": 1, "kind": "metrics", "metrics": {"ts": time.time(),
                                                      "values": {"cpu.percent": 1.0}}}
    answer = Transport(server.url, insecure=True).request(
        "POST", "/agent/v1/checkin", batch, key=state.load_key(), agent_id=cli.agent_id)
    # Then it is acknowledged as a duplicate and nothing is added
    assert answer["duplicate"] is True and answer["ack_seq"] == 1
    assert metric_count(agent) == stored


def test_spool_overflow_drops_oldest_metrics_and_reports_the_exact_count(make_agent, server):
    # Given an agent with a spool of ~4 metric batches
    cli, agent = make_agent(spool_bytes=2600)
    assert cli.once().returncode == 0
    # When the server is down for 10 check-ins
    server.stop()
    for _ in range(10):
        assert cli.once().json["outcome"] == "unreachable"
    status = cli.status()
    kept = status["spooled_batches"]["metrics"]
    dropped = status["dropped"]["metrics"]
    assert kept + dropped == 10 and dropped > 0
    # When the server is back (the 11th check-in may itself push one more batch out)
    server.start()
    assert cli.once().returncode == 0
    total_dropped = cli.status()["dropped"]["metrics"]
    assert total_dropped in (dropped, dropped + 1)
    # Then the server knows exactly how many batches were lost, and stored all the rest
    agent.refresh_from_db()
    assert agent.spool_dropped == {"metrics": total_dropped}
    assert metric_count(agent) == 1 + 11 - total_dropped
    event = Event.objects.get(kind="agent.spool_overflow")
    assert event.payload["dropped_new"] == {"metrics": total_dropped}


# --- commands ---------------------------------------------------------------------------------

@pytest.fixture
def script(db):
    return actions.create_script(
        actor="test", name="Echo args", language="bash",
        body='echo "host={{ hostname }}"\nfor a in "$@"; do echo "arg=[$a]"; done\nexit 3\n',
        parameters=[{"name": "first", "required": True}, {"name": "second"}])


def test_signed_script_runs_with_arguments_never_through_a_shell(make_agent, script, signer_key,
                                                                 tmp_path):
    # Given an approved agent and a run whose parameter looks like shell injection
    cli, agent = make_agent()
    marker = tmp_path / "pwned"
    run = actions.run_script(actor="test", version=script.current,
                             target_kind=TargetKind.DEVICE, target=agent.device,
                             parameters={"first": f"x; touch {marker}", "second": "$(id)"})
    # When the signer signs it and the agent checks in
    assert signer.sign_pending(signer_key)["signed"] == 1
    result = cli.once()
    # Then the script ran once with its arguments verbatim, and the result came back
    assert result.returncode == 0 and result.json["commands"] == 1
    command = Command.objects.get(run=run)
    assert command.status == CommandStatus.FAILED and command.exit_code == 3
    assert f"arg=[x; touch {marker}]" in command.stdout
    assert "arg=[$(id)]" in command.stdout
    assert f"host={agent.hostname}" in command.stdout
    assert not marker.exists()
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    # And it is never run twice, even when delivered again
    Command.objects.filter(pk=command.pk).update(status=CommandStatus.DELIVERED)
    Agent.objects.filter(pk=agent.pk).update(commands_waiting=True)
    again = cli.once()
    assert again.json["commands"] == 1
    command.refresh_from_db()
    assert command.status == CommandStatus.REFUSED and command.reason == "replayed nonce"


def _forge(command: Command, agent_uid: str, *, key=None, expires_in: int = 600,
           nonce: str | None = None, tamper: bool = False, unsigned: bool = False):
    payload = json.dumps({
        "v": 1, "id": str(command.uid), "agent": agent_uid, "nonce": nonce or command.nonce,
        "issued_at": int(time.time()), "expires_at": int(time.time()) + expires_in,
        "language": "bash", "body": command.body, "args": [], "timeout": 30,
        "output_cap": 4096}, sort_keys=True, separators=(",", ":"))
    signature = "" if unsigned else base64.b64encode(key.sign(payload.encode())).decode()
    if tamper:
        payload = payload.replace("touch", "rm -f")
    Command.objects.filter(pk=command.pk).update(status=CommandStatus.SIGNED, payload=payload,
                                                 signature=signature,
                                                 signed_at=timezone.now())
    # What the signer does after signing: tell the check-in there is something to hand out.
    Agent.objects.filter(pk=command.agent_id).update(commands_waiting=True)


@pytest.mark.parametrize("attack,reason", [
    ("unsigned", "unsigned"),
    ("tampered", "bad signature"),
    ("wrong_key", "bad signature"),
    ("expired", "expired"),
    ("other_agent", "addressed to another agent"),
    ("replayed", "replayed nonce"),
])
def test_agent_refuses_commands_that_do_not_verify(make_agent, signer_key, tmp_path, attack,
                                                   reason):
    # Given an approved agent and a command row the attacker controls
    cli, agent = make_agent()
    marker = tmp_path / "ran"
    command = Command.objects.create(
        agent=agent, nonce=uuid.uuid4().hex, language="bash", body=f"touch {marker}",
        expires_at=timezone.now() + timedelta(minutes=10))
    key_of = {"wrong_key": Ed25519PrivateKey.generate()}.get(attack, signer_key)
    if attack == "replayed":
        # a genuine command that already ran; the same signed nonce is then sent again
        _forge(command, cli.agent_id, key=signer_key)
        assert cli.once().returncode == 0 and marker.exists()
        marker.unlink()
        replay = Command.objects.create(agent=agent, nonce=uuid.uuid4().hex, language="bash",
                                        body="", expires_at=command.expires_at)
        Command.objects.filter(pk=replay.pk).update(
            payload=Command.objects.get(pk=command.pk).payload.replace(
                str(command.uid), str(replay.uid)))
        source = Command.objects.get(pk=command.pk)
        payload = Command.objects.get(pk=replay.pk).payload
        Command.objects.filter(pk=replay.pk).update(
            status=CommandStatus.SIGNED, payload=payload,
            signature=base64.b64encode(signer_key.sign(payload.encode())).decode())
        Agent.objects.filter(pk=agent.pk).update(commands_waiting=True)
        assert source.nonce in payload
        command = replay
    else:
        _forge(command, str(uuid.uuid4()) if attack == "other_agent" else cli.agent_id,
               key=key_of, expires_in=-5 if attack == "expired" else 600,
               tamper=attack == "tampered", unsigned=attack == "unsigned")
    # When the agent checks in and receives it
    result = cli.once()
    # Then it is refused, the reason is reported back, and nothing ran
    assert result.returncode == 0
    command.refresh_from_db()
    assert command.status == CommandStatus.REFUSED
    assert command.reason == reason
    assert not marker.exists()


def test_large_job_needs_a_second_persons_approval(make_agent, script, signer_key, settings,
                                                    owner, admin_user):
    # Given a threshold of one endpoint and a client with two agents
    settings.LARGE_JOB_THRESHOLD = 1
    cli, agent = make_agent()
    cli2, _ = make_agent()
    # When the owner runs the script on the whole client
    run = actions.run_script(actor=owner, version=script.current,
                             target_kind=TargetKind.CLIENT, target=agent.client,
                             parameters={"first": "a"})
    # Then nothing is signed and nothing runs
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert signer.sign_pending(signer_key)["signed"] == 0
    assert cli.once().json["commands"] == 0
    # And the requester cannot approve it, nor can a web tier that flips the rows itself
    with pytest.raises(actions.ActionError):
        actions.approve_run(actor=owner, run=run)
    Command.objects.filter(run=run).update(status=CommandStatus.QUEUED)
    assert signer.sign_pending(signer_key) == {"signed": 0, "held": 2, "expired": 0}
    Command.objects.filter(run=run).update(status=CommandStatus.AWAITING_APPROVAL)
    # When a second person approves it, then it is signed and runs on both
    actions.approve_run(actor=admin_user, run=run)
    assert signer.sign_pending(signer_key)["signed"] == 2
    assert cli.once().json["commands"] == 1 and cli2.once().json["commands"] == 1
    assert set(Command.objects.filter(run=run).values_list("exit_code", flat=True)) == {3}


def test_kill_switch_cancels_every_pending_command(make_agent, script, signer_key, owner):
    # Given signed commands waiting for two agents
    cli, agent = make_agent()
    _, agent2 = make_agent()
    for target in (agent.device, agent2.device):
        actions.run_script(actor=owner, version=script.current, target_kind=TargetKind.DEVICE,
                           target=target, parameters={"first": "a"})
    signer.sign_pending(signer_key)
    # When the kill switch is pulled
    assert actions.kill_switch(actor=owner) == 2
    # Then no command is delivered or run, and the switch is audited
    assert cli.once().json["commands"] == 0
    assert set(Command.objects.values_list("status", flat=True)) == {CommandStatus.CANCELLED}
    from watchkeeper.core.models import AuditEntry

    assert AuditEntry.objects.filter(object_type="agents.killswitch").count() == 1
