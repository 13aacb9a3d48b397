"""Metric rollups: 5-minute and hourly buckets computed set-based from raw samples,
idempotent reruns that take in late samples, retention, and the range query that picks
raw / 5 min / 1 h by span. Runs on SQLite and on PostgreSQL (WATCHKEEPER_DATABASE_URL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from watchkeeper.agents.models import MetricName, MetricSample
from watchkeeper.inventory.actions import create_device
from watchkeeper.monitoring.history import actions as rollups
from watchkeeper.monitoring.models import MetricRollup, RollupCursor

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def devices(client_a):
    return [create_device(actor=None, client=client_a, name=f"srv-{i}") for i in range(2)]


@pytest.fixture
def metrics(db):
    return [MetricName.objects.create(name="cpu.percent"),
            MetricName.objects.create(name="disk.used_percent:/")]


def add_samples(device, metric, start, minutes, value=lambda i: float(i)):
    MetricSample.objects.bulk_create([
        MetricSample(device=device, metric=metric, ts=start + timedelta(minutes=i, seconds=7),
                     value=value(i)) for i in range(minutes)])


def rollup(resolution, device, metric, bucket):
    return MetricRollup.objects.get(resolution=resolution, device=device, metric=metric,
                                    bucket=bucket)


def test_five_minute_and_hourly_buckets(devices, metrics):
    # Given two hours of one sample a minute for two devices and two metrics
    for d, device in enumerate(devices):
        for m, metric in enumerate(metrics):
            add_samples(device, metric, T0, 120, value=lambda i, d=d, m=m: i + 1000 * d + m)
    # When rollups run just after the two hours
    counters = rollups.run_rollups(now=T0 + timedelta(hours=2, minutes=2))
    # Then each 5-minute bucket holds its 5 samples: count, average, min, max
    assert counters["rollup_5m"] == 2 * 2 * 24
    first = rollup(300, devices[1], metrics[1], T0)
    assert (first.count, first.minimum, first.maximum) == (5, 1001.0, 1005.0)
    assert first.average == pytest.approx(1003.0)
    later = rollup(300, devices[0], metrics[0], T0 + timedelta(minutes=35))
    assert (later.count, later.minimum, later.maximum) == (5, 35.0, 39.0)
    # And each complete hour is the sum of its twelve 5-minute buckets
    hour = rollup(3600, devices[0], metrics[0], T0 + timedelta(hours=1))
    assert (hour.count, hour.minimum, hour.maximum) == (60, 60.0, 119.0)
    assert hour.average == pytest.approx(89.5)
    assert MetricRollup.objects.filter(resolution=3600).count() == 2 * 2 * 2


def test_rerun_is_idempotent_and_takes_in_late_samples(devices, metrics):
    device, metric = devices[0], metrics[0]
    add_samples(device, metric, T0, 30, value=lambda i: 10.0)
    now = T0 + timedelta(minutes=32)
    rollups.run_rollups(now=now)
    before = list(MetricRollup.objects.order_by("bucket").values_list(
        "bucket", "count", "total"))
    # When it runs again with nothing new, nothing changes (no double counting)
    rollups.run_rollups(now=now)
    assert list(MetricRollup.objects.order_by("bucket").values_list(
        "bucket", "count", "total")) == before
    # When a sample arrives late for an already rolled bucket (a spooled agent replays)
    MetricSample.objects.create(device=device, metric=metric,
                                ts=T0 + timedelta(minutes=21), value=99.0)
    rollups.run_rollups(now=now + timedelta(minutes=5))
    bucket = rollup(300, device, metric, T0 + timedelta(minutes=20))
    # Then the bucket is recomputed from its samples
    assert (bucket.count, bucket.maximum) == (6, 99.0)
    assert bucket.total == pytest.approx(5 * 10.0 + 99.0)


def test_incomplete_buckets_wait_and_the_cursor_advances(devices, metrics):
    add_samples(devices[0], metrics[0], T0, 12)
    # At T0+12:30 the 10-15 bucket is still open: only 0-5 and 5-10 are rolled
    rollups.run_rollups(now=T0 + timedelta(minutes=12, seconds=30))
    assert sorted(MetricRollup.objects.filter(resolution=300).values_list(
        "bucket", flat=True)) == [T0, T0 + timedelta(minutes=5)]
    assert RollupCursor.objects.get(resolution=300).position == T0 + timedelta(minutes=10)
    # No complete hour yet
    assert not MetricRollup.objects.filter(resolution=3600).exists()
    rollups.run_rollups(now=T0 + timedelta(minutes=20))
    assert rollup(300, devices[0], metrics[0], T0 + timedelta(minutes=10)).count == 2


def test_stale_cursor_claim_loses(devices, metrics):
    # Two schedulers read the cursor at the same position; the second compare-and-set fails
    add_samples(devices[0], metrics[0], T0, 10)
    rollups.run_rollups(now=T0 + timedelta(minutes=11))
    cursor = RollupCursor.objects.get(resolution=300)
    assert RollupCursor.objects.filter(resolution=300, position=cursor.position).update(
        position=cursor.position + timedelta(minutes=5)) == 1
    assert RollupCursor.objects.filter(resolution=300, position=cursor.position).update(
        position=cursor.position + timedelta(minutes=5)) == 0


@override_settings(METRIC_ROLLUP_5M_DAYS=2, METRIC_ROLLUP_1H_DAYS=10)
def test_retention_prunes_old_rollups(devices, metrics):
    now = T0 + timedelta(days=20)
    rows = [MetricRollup(resolution=res, device=devices[0], metric=metrics[0],
                         bucket=now - timedelta(days=age), count=1, total=1, minimum=1,
                         maximum=1)
            for res, age in ((300, 1), (300, 3), (3600, 5), (3600, 11))]
    MetricRollup.objects.bulk_create(rows)
    assert rollups.enforce_retention(now) == {"rollups_5m_pruned": 1, "rollups_1h_pruned": 1}
    assert sorted(MetricRollup.objects.values_list("resolution", "bucket")) == [
        (300, now - timedelta(days=1)), (3600, now - timedelta(days=5))]


def test_series_picks_resolution_by_span(devices, metrics):
    device, metric = devices[0], metrics[0]
    add_samples(device, metric, T0, 180)
    rollups.run_rollups(now=T0 + timedelta(hours=3, minutes=2))
    now = T0 + timedelta(hours=3, minutes=2)
    with override_settings(METRIC_RETENTION_DAYS=30, METRIC_ROLLUP_5M_DAYS=90):
        assert rollups.pick_resolution(now - timedelta(hours=2), now, now) == 0
        assert rollups.pick_resolution(now - timedelta(days=2), now, now) == 300
        assert rollups.pick_resolution(now - timedelta(days=30), now, now) == 3600
        # A short span whose raw samples are past retention falls back to rollups
        assert rollups.pick_resolution(now - timedelta(days=40), now - timedelta(days=39,
                                                                                 hours=22),
                                       now) == 300
        assert rollups.pick_resolution(now - timedelta(days=100), now - timedelta(days=99),
                                       now) == 3600
    res, raw = rollups.series(device.pk, "cpu.percent", T0, T0 + timedelta(hours=1),
                              resolution=0)
    assert res == 0 and len(raw) == 60 and raw[0].avg == 0.0
    res, five = rollups.series(device.pk, "cpu.percent", T0, T0 + timedelta(hours=3),
                               resolution=300)
    assert res == 300 and len(five) == 36
    assert five[1].avg == pytest.approx(7.0) and five[1].count == 5
    res, hours = rollups.series(device.pk, "cpu.percent", T0, T0 + timedelta(hours=3),
                                resolution=3600)
    assert [p.count for p in hours] == [60, 60, 60]
    assert hours[2].min == 120.0 and hours[2].max == 179.0
    assert rollups.series(device.pk, "no.such.metric", T0)[1] == []
