"""REST API of metric series (/api/v1/monitoring/devices/<id>/metrics/): raw, 5-minute or
hourly points, at the resolution the span needs."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from watchkeeper.core.tenancy import scoped
from watchkeeper.inventory.selectors import all_devices

from . import actions as rollups

VIEW = "monitoring.view"


class MetricSeriesView(APIView):
    """A device's metric over a range: raw, 5-minute or hourly points by span
    (?metric=&since=&until=&resolution=0|300|3600, ISO 8601 times; default the last 6 h)."""

    permissions = {"GET": VIEW}
    wk_model = all_devices().model

    @extend_schema(responses={200: dict})
    def get(self, request, device_pk: int):
        device = get_object_or_404(scoped(all_devices(), request.user), pk=device_pk)
        metric = request.query_params.get("metric", "")
        if not metric or len(metric) > 200:
            raise serializers.ValidationError({"metric": "Required."})
        now = timezone.now()
        until = parse_datetime(request.query_params.get("until", "")) or now
        since = parse_datetime(request.query_params.get("since", "")) or until - timedelta(
            hours=6)
        if since >= until:
            raise serializers.ValidationError({"since": "Must be before until."})
        resolution = request.query_params.get("resolution")
        if resolution not in (None, "", "0", "300", "3600"):
            raise serializers.ValidationError({"resolution": "0, 300 or 3600."})
        used, points = rollups.series(device.pk, metric, since, until,
                                      int(resolution) if resolution else None)
        return Response({"device": device.pk, "metric": metric, "resolution": used,
                         "since": since, "until": until,
                         "points": [{"ts": p.ts, "avg": p.avg, "min": p.min, "max": p.max,
                                     "count": p.count} for p in points]})


def extra_urls() -> list:
    return [
        path("monitoring/devices/<id:device_pk>/metrics/", MetricSeriesView.as_view(),
             name="monitoring-metric-series"),
    ]
