"""Malformed inventory deltas: whatever shape an agent sends, apply_agent_inventory either
applies it or raises ValueError (the agents app answers 400) — never a database error."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.inventory import services

pytestmark = pytest.mark.django_db

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=400))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8)
keys = st.sampled_from(["name", "version", "source", "mac", "ipv4", "ipv6", "device",
                        "total_bytes", "serial", "hostname", "model", "os_name",
                        "pending_update_count", "reboot_required", "state", "x"])
items = st.one_of(st.dictionaries(keys, values, max_size=6), scalars)
sections = st.dictionaries(
    st.sampled_from(list(services.SECTIONS) + ["bogus"]),
    st.one_of(st.dictionaries(keys, values, max_size=8), st.lists(items, max_size=5), scalars),
    max_size=4)


@pytest.fixture
def device(client_a):
    return services.register_agent_device(client_id=client_a.pk, site_id=None,
                                          hostname="fuzz", agent_ref="fuzz")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=sections)
def test_any_payload_is_applied_or_refused_with_value_error(device, payload):
    try:
        with transaction.atomic():
            changed = services.apply_agent_inventory(device_id=device.pk, sections=payload,
                                                     agent_ref="fuzz",
                                                     observed_at=timezone.now())
    except ValueError:
        return
    assert isinstance(changed, list)
    device.refresh_from_db()
    assert len(device.hostname) <= 255 and len(device.serial) <= 200
