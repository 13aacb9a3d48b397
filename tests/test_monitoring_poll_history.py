"""Network-check history that does not grow without bound: raw runs rolled up into 5-minute
and hourly CheckRollup buckets (runs per state, value count/sum/min/max), state transitions
kept in PollTransition, retention pruning in bounded chunks that never loses a run the
rollup has not taken in, and the chart series / API / page picking the resolution by range.
Runs on SQLite and on PostgreSQL (WATCHKEEPER_DATABASE_URL): the rollup, transition and
prune SQL differs between them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_user
from tests.monitoring_targets import HttpTarget
from watchkeeper.core.choices import Role
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.history import actions as rollups
from watchkeeper.monitoring.models import (
    Check,
    CheckRollup,
    MetricRollup,
    PollSample,
    PollTransition,
    RollupCursor,
)
from watchkeeper.monitoring.poller.engine import Poller

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
API = "/api/v1/monitoring"


@pytest.fixture
def policy(client_a):
    return mon_actions.create_policy(actor=None, name="Network", client=client_a)


@pytest.fixture
def checks(policy):
    return [mon_actions.add_check(actor=None, policy=policy, name=f"Web {i}", kind="http",
                                  config={"url": f"https://w{i}.example.test/"})
            for i in range(2)]


def add_runs(check, start, minutes, *, state=lambda i: "ok", value=lambda i: float(i),
             second=7):
    PollSample.objects.bulk_create([
        PollSample(check_template=check, client_id=check.policy.client_id,
                   ts=start + timedelta(minutes=i, seconds=second), state=state(i),
                   value=value(i), message=f"run {i}") for i in range(minutes)])


def bucket(resolution, check, at):
    return CheckRollup.objects.get(resolution=resolution, check_template=check, bucket=at)


def transitions(check):
    return list(PollTransition.objects.filter(check_template=check).order_by("ts")
                .values_list("ts", "previous", "state"))


# --- Rollups ---------------------------------------------------------------------------------

def test_five_minute_and_hourly_buckets_of_values_and_states(checks):
    # Given two hours of one run a minute for two checks: values 0..119 (+1000 for the second),
    # every 4th run critical, every 10th run without a value (a failed connect)
    for c, check in enumerate(checks):
        add_runs(check, T0, 120,
                 state=lambda i: "critical" if i % 4 == 3 else "ok",
                 value=lambda i, c=c: None if i % 10 == 9 else i + 1000.0 * c)
    # When the rollups run just after the two hours
    counters = rollups.run_rollups(now=T0 + timedelta(hours=2, minutes=2))
    assert counters["rollup_5m"] == 0  # the agents' stream has nothing to roll
    # Then each 5-minute bucket holds its five runs, per state, and its values
    first = bucket(300, checks[1], T0)
    assert (first.runs, first.ok, first.critical, first.warning, first.unknown) == (5, 4, 1, 0,
                                                                                    0)
    assert (first.count, first.minimum, first.maximum) == (5, 1000.0, 1004.0)
    assert first.average == pytest.approx(1002.0)
    assert first.client_id == checks[1].policy.client_id
    # A bucket with a run without value counts the run but not the value
    second = bucket(300, checks[0], T0 + timedelta(minutes=5))
    assert (second.runs, second.count) == (5, 4)
    assert (second.minimum, second.maximum) == (5.0, 8.0)
    assert second.average == pytest.approx((5 + 6 + 7 + 8) / 4)
    # And each hour is the sum of its twelve 5-minute buckets
    hour = bucket(3600, checks[0], T0 + timedelta(hours=1))
    assert (hour.runs, hour.ok, hour.critical) == (60, 45, 15)
    values = [i for i in range(60, 120) if i % 10 != 9]
    assert (hour.count, hour.minimum, hour.maximum) == (len(values), 60.0, 118.0)
    assert hour.average == pytest.approx(sum(values) / len(values))
    assert CheckRollup.objects.filter(resolution=300).count() == 2 * 24
    assert CheckRollup.objects.filter(resolution=3600).count() == 2 * 2
    # The two streams have cursors of their own
    assert set(RollupCursor.objects.values_list("stream", "resolution")) == {
        ("poll", 300), ("poll", 3600)}
    assert not MetricRollup.objects.exists()


def test_bucket_boundaries_and_unknown_states(checks):
    check = checks[0]
    PollSample.objects.bulk_create([
        PollSample(check_template=check, ts=T0 + timedelta(minutes=4, seconds=59,
                                                           microseconds=999_999),
                   state="warning", value=1.0),
        PollSample(check_template=check, ts=T0 + timedelta(minutes=5), state="unknown",
                   value=None),
        PollSample(check_template=check, ts=T0 + timedelta(minutes=9, seconds=59),
                   state="odd", value=3.0),
        PollSample(check_template=check, ts=T0 + timedelta(minutes=10), state="ok",
                   value=4.0)])
    rollups.run_rollups(now=T0 + timedelta(minutes=16, seconds=1))
    # The last instant of a bucket belongs to it; its end belongs to the next one
    assert (bucket(300, check, T0).runs, bucket(300, check, T0).warning) == (1, 1)
    middle = bucket(300, check, T0 + timedelta(minutes=5))
    # A state the rollup does not know counts as unknown
    assert (middle.runs, middle.unknown, middle.count, middle.minimum) == (2, 2, 1, 3.0)
    assert bucket(300, check, T0 + timedelta(minutes=10)).ok == 1


def test_rerun_is_idempotent_and_takes_in_late_runs(checks):
    check = checks[0]
    add_runs(check, T0, 30, value=lambda i: 10.0)
    now = T0 + timedelta(minutes=32)
    rollups.run_rollups(now=now)
    before = list(CheckRollup.objects.order_by("bucket").values_list("bucket", "runs",
                                                                     "total"))
    before_transitions = transitions(check)
    rollups.run_rollups(now=now)
    assert list(CheckRollup.objects.order_by("bucket").values_list(
        "bucket", "runs", "total")) == before
    assert transitions(check) == before_transitions
    # A run flushed late (the poller's buffer while the database was away) is taken in
    PollSample.objects.create(check_template=check, ts=T0 + timedelta(minutes=26),
                              state="critical", value=99.0)
    rollups.run_rollups(now=now + timedelta(minutes=5))
    late = bucket(300, check, T0 + timedelta(minutes=25))
    assert (late.runs, late.critical, late.maximum) == (6, 1, 99.0)
    assert late.total == pytest.approx(5 * 10.0 + 99.0)
    # ... and so is the state change it makes
    assert transitions(check)[-2:] == [(T0 + timedelta(minutes=26), "ok", "critical"),
                                       (T0 + timedelta(minutes=26, seconds=7), "critical",
                                        "ok")]


# --- Transitions -----------------------------------------------------------------------------

def test_transitions_keep_only_state_changes_across_spans(checks):
    check, other = checks
    # ok x10, critical x5, ok x10, warning x5: three changes after the first run
    states = ["ok"] * 10 + ["critical"] * 5 + ["ok"] * 10 + ["warning"] * 5
    add_runs(check, T0, 30, state=lambda i: states[i])
    add_runs(other, T0, 30)
    # Rolled in two runs of the job, the second span starting in the middle of a state
    rollups.run_rollups(now=T0 + timedelta(minutes=12, seconds=30))
    rollups.run_rollups(now=T0 + timedelta(minutes=32))
    at = [T0 + timedelta(minutes=m, seconds=7) for m in (0, 10, 15, 25)]
    assert transitions(check) == [(at[0], "", "ok"), (at[1], "ok", "critical"),
                                  (at[2], "critical", "ok"), (at[3], "ok", "warning")]
    # A check that never changed keeps only its first run
    assert transitions(other) == [(at[0], "", "ok")]
    first = PollTransition.objects.get(check_template=check, ts=at[1])
    assert (first.value, first.message, first.client_id) == (10.0, "run 10",
                                                             check.policy.client_id)


def test_transitions_after_the_runs_before_are_pruned(checks):
    # Given a check whose runs of the first hour were rolled and then pruned
    check = checks[0]
    add_runs(check, T0, 60, state=lambda i: "critical" if i >= 50 else "ok")
    rollups.run_rollups(now=T0 + timedelta(hours=1, minutes=2))
    PollSample.objects.filter(ts__lt=T0 + timedelta(minutes=50)).delete()  # as the prune
    # would: never inside the span the next rollup rolls again
    # When the next runs go on critical and then recover
    add_runs(check, T0 + timedelta(hours=1), 10, state=lambda i: "ok" if i >= 5 else
             "critical")
    rollups.run_rollups(now=T0 + timedelta(hours=1, minutes=12))
    # Then the previous state comes from the transitions kept: no repeated "critical"
    assert [t[1:] for t in transitions(check)] == [("", "ok"), ("ok", "critical"),
                                                   ("critical", "ok")]


# --- Retention and chunked pruning ----------------------------------------------------------

def test_prune_in_chunks_leaves_newer_rows_untouched(checks):
    check = checks[0]
    cutoff = T0 + timedelta(minutes=30)
    add_runs(check, T0, 45)  # 30 before the cutoff, 15 after
    # Rows written out of time order, and more rows than a chunk at one instant
    PollSample.objects.bulk_create([PollSample(check_template=check, ts=T0, state="ok")
                                    for _ in range(6)])
    PollSample.objects.create(check_template=check, ts=cutoff - timedelta(microseconds=1),
                              state="ok")
    newer = set(PollSample.objects.filter(ts__gte=cutoff).values_list("id", flat=True))
    with CaptureQueriesContext(connection) as queries:
        deleted = rollups.prune_chunked(PollSample, "ts", cutoff, chunk=4)
    assert deleted == 30 + 6 + 1
    assert set(PollSample.objects.values_list("id", flat=True)) == newer
    deletes = [q["sql"] for q in queries.captured_queries
               if q["sql"].lstrip().upper().startswith("DELETE")]
    # Bounded statements: every DELETE says a time range, and there are many of them
    assert len(deletes) >= 37 // 4
    assert all('"ts" <' in sql for sql in deletes)
    # Nothing left to prune: no DELETE at all
    with CaptureQueriesContext(connection) as queries:
        assert rollups.prune_chunked(PollSample, "ts", cutoff, chunk=4) == 0
    assert not [q for q in queries.captured_queries if "DELETE" in q["sql"].upper()]
    with pytest.raises(ValueError):
        rollups.prune_chunked(PollSample, "ts", cutoff, chunk=0)


@override_settings(POLL_SAMPLE_DAYS=1, POLL_ROLLUP_5M_DAYS=3, POLL_ROLLUP_1H_DAYS=10,
                   POLL_TRANSITION_DAYS=20)
def test_retention_of_runs_rollups_and_transitions(checks):
    check = checks[0]
    now = T0 + timedelta(days=30)
    # Runs 2 days and 1 hour old, rolled by the job; rollups and transitions of all ages
    add_runs(check, now - timedelta(days=2), 10)
    add_runs(check, now - timedelta(hours=1), 10)
    rollups.run_rollups(now=now)
    CheckRollup.objects.bulk_create([
        CheckRollup(resolution=res, check_template=check, bucket=now - timedelta(days=age),
                    runs=1, ok=1) for res, age in ((300, 2.5), (300, 4), (3600, 9), (3600, 11))])
    PollTransition.objects.bulk_create([
        PollTransition(check_template=check, ts=now - timedelta(days=age), state="ok")
        for age in (19, 21)])
    counters = rollups.enforce_poll_retention(now, chunk=3)
    assert counters["poll_samples"] == 10
    assert PollSample.objects.filter(ts__lt=now - timedelta(days=1)).count() == 0
    assert PollSample.objects.count() == 10
    assert counters["poll_rollups_5m_pruned"] == 1  # the 4-day-old bucket
    assert not CheckRollup.objects.filter(resolution=300,
                                          bucket__lt=now - timedelta(days=3)).exists()
    assert CheckRollup.objects.filter(resolution=300, bucket=now - timedelta(days=2.5)).exists()
    assert counters["poll_rollups_1h_pruned"] == 1
    assert CheckRollup.objects.filter(resolution=3600,
                                      bucket=now - timedelta(days=9)).exists()
    assert counters["poll_transitions_pruned"] == 1
    assert PollTransition.objects.filter(ts=now - timedelta(days=19)).exists()


@override_settings(POLL_SAMPLE_DAYS=1, POLL_ROLLUP_5M_DAYS=1)
def test_runs_not_rolled_yet_are_never_pruned(checks):
    check = checks[0]
    now = T0 + timedelta(days=10)
    add_runs(check, now - timedelta(days=5), 30)
    # The rollup job never ran: old as they are, the runs stay
    assert rollups.enforce_poll_retention(now)["poll_samples"] == 0
    assert PollSample.objects.count() == 30
    # It ran only up to the first 10 minutes (it was behind): only runs it took in go
    RollupCursor.objects.create(stream="poll", resolution=300,
                                position=now - timedelta(days=5) + timedelta(minutes=20))
    RollupCursor.objects.create(stream="poll", resolution=3600,
                                position=now - timedelta(days=5))
    CheckRollup.objects.create(resolution=300, check_template=check,
                               bucket=now - timedelta(days=5, hours=1), runs=1)
    counters = rollups.enforce_poll_retention(now)
    # the cursor minus the 10-minute reroll: runs before minute 10 only
    assert counters["poll_samples"] == 10
    assert PollSample.objects.count() == 20
    # and the 5-minute bucket the hourly rollup has not reached stays
    assert counters["poll_rollups_5m_pruned"] == 0


def test_settings_refuse_a_retention_below_one_day():
    env = {**os.environ, "WATCHKEEPER_POLL_SAMPLE_DAYS": "0",
           "DJANGO_SETTINGS_MODULE": "watchkeeper.settings"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "WATCHKEEPER_POLL_SAMPLE_DAYS must be at least 1 (days), not 0" in result.stderr


# --- Series, API and page ------------------------------------------------------------------

@override_settings(POLL_SAMPLE_DAYS=2, POLL_ROLLUP_5M_DAYS=14)
def test_check_series_picks_resolution_and_adds_the_unrolled_tail(checks):
    check = checks[0]
    now = T0 + timedelta(hours=3, minutes=2)
    assert rollups.pick_check_resolution(now - timedelta(hours=6), now, now) == 0
    assert rollups.pick_check_resolution(now - timedelta(days=1), now, now) == 300
    assert rollups.pick_check_resolution(now - timedelta(days=7), now, now) == 300
    assert rollups.pick_check_resolution(now - timedelta(days=30), now, now) == 3600
    # A short range older than the raw runs' retention reads the 5-minute rollups
    assert rollups.pick_check_resolution(now - timedelta(days=3),
                                         now - timedelta(days=3) + timedelta(hours=1),
                                         now) == 300
    assert rollups.pick_check_resolution(now - timedelta(days=20),
                                         now - timedelta(days=19), now) == 3600
    add_runs(check, T0, 180)
    rollups.run_rollups(now=T0 + timedelta(hours=2, minutes=2))  # rolled to 2:00
    res, raw = rollups.check_series(check.pk, T0, T0 + timedelta(hours=1), resolution=0)
    assert res == 0 and len(raw) == 60 and raw[3].avg == 3.0 and raw[3].runs == 1
    res, five = rollups.check_series(check.pk, T0, T0 + timedelta(hours=3), resolution=300)
    # 24 rolled buckets plus 12 computed from the runs the job has not reached
    assert res == 300 and len(five) == 36
    assert [p.runs for p in five] == [5] * 36
    assert five[30].avg == pytest.approx(152.0) and five[30].min == 150.0
    assert five[30].availability == 1.0
    res, hours = rollups.check_series(check.pk, T0, T0 + timedelta(hours=3), resolution=3600)
    assert [(p.runs, p.min, p.max) for p in hours] == [(60, 0, 59), (60, 60, 119),
                                                       (60, 120, 179)]


@pytest.mark.django_db(transaction=True)
def test_series_and_transitions_api_after_real_poller_runs(as_user, tech_a, tech_b_factory,
                                                           policy):
    # Given an HTTP check of a real local server, run by the poller three times (the page
    # breaks in between), and the rollups run
    with HttpTarget() as target:
        check = mon_actions.add_check(actor=None, policy=policy, name="Portal", kind="http",
                                      config={"url": target.url("/ok")})
        for path in ("/ok", "/error", "/ok"):
            Check.objects.filter(pk=check.pk).update(  # test setup: point it, make it due
                config={"url": target.url(path)},
                next_run_at=timezone.now() - timedelta(seconds=1))
            asyncio.run(Poller().run_once())
    rollups.run_rollups(now=timezone.now() + timedelta(minutes=6))
    api = as_user(tech_a)
    got = api.get(f"{API}/network-checks/{check.pk}/series/")
    assert got.status_code == 200, got.content
    body = got.json()
    assert body["resolution"] == 0 and [p["states"] for p in body["points"]] == [
        {"ok": 1}, {"critical": 1}, {"ok": 1}]
    since = (timezone.now() - timedelta(days=3)).isoformat()
    got = api.get(f"{API}/network-checks/{check.pk}/series/", {"since": since}).json()
    assert got["resolution"] == 300
    assert sum(p["runs"] for p in got["points"]) == 3
    assert sum(p["states"].get("critical", 0) for p in got["points"]) == 1
    got = api.get(f"{API}/network-checks/{check.pk}/series/",
                  {"since": since, "resolution": "3600"}).json()
    assert got["resolution"] == 3600 and sum(p["runs"] for p in got["points"]) == 3
    changes = api.get(f"{API}/network-checks/{check.pk}/transitions/").json()
    assert [(c["previous"], c["state"]) for c in changes] == [("critical", "ok"),
                                                               ("ok", "critical"), ("", "ok")]
    # Bad input: a clear 400
    bad = api.get(f"{API}/network-checks/{check.pk}/series/", {"since": "yesterday"})
    assert bad.status_code == 400 and "ISO 8601" in bad.content.decode()
    bad = api.get(f"{API}/network-checks/{check.pk}/series/", {"resolution": "60"})
    assert bad.status_code == 400 and "0, 300 or 3600" in bad.content.decode()
    # Another tenant's technician does not see the check
    other = as_user(tech_b_factory())
    assert other.get(f"{API}/network-checks/{check.pk}/series/").status_code == 404
    assert other.get(f"{API}/network-checks/{check.pk}/transitions/").status_code == 404


@pytest.fixture
def tech_b_factory(client_b):
    def make():
        user = make_user("tech-b@msp.test", Role.TECHNICIAN)
        user.assigned_clients.add(client_b)
        return user

    return make


def test_check_page_chart_follows_the_range(as_user, owner, checks):
    check = checks[0]
    now = timezone.now()
    add_runs(check, now - timedelta(days=3), 60, state=lambda i: "critical" if i == 30
             else "ok")
    add_runs(check, now - timedelta(minutes=30), 20)
    rollups.run_rollups(now=now)
    page = as_user(owner)
    html = page.get(f"/monitoring/network/{check.pk}/").content.decode()
    assert "6 hours, each run" in html and "20 runs, 100.00 % ok" in html
    html = page.get(f"/monitoring/network/{check.pk}/?range=7d").content.decode()
    assert "7 days, 5-minute buckets" in html and "80 runs, 98.75 % ok" in html
    assert 'aria-current="true">7 days' in html
    assert html.count('id="poll-transitions"') == 1 and "first run" in html
    html = page.get(f"/monitoring/network/{check.pk}/?range=1y").content.decode()
    assert "1 year, hourly buckets" in html
    # An unknown range is the default one, not an error
    html = page.get(f"/monitoring/network/{check.pk}/?range=forever").content.decode()
    assert "6 hours, each run" in html
