"""Tenant-isolation factories of the patching app (see tests/tenancy_fixtures.py)."""

from __future__ import annotations

from django.utils import timezone

from tests.tenancy_fixtures import factory
from watchkeeper.core.models import Client
from watchkeeper.inventory import services as inventory_services
from watchkeeper.patching.models import DevicePatchState, DeviceUpdate
from watchkeeper.patching.services import apply_agent_updates


def _reported(client: Client, tag: str) -> int:
    device = inventory_services.register_agent_device(
        client_id=client.pk, site_id=None, hostname=f"{tag} Patched",
        agent_ref=f"{tag}-patch-agent")
    apply_agent_updates(device_id=device.pk, client_id=client.pk, agent_ref=f"{tag}-agent",
                        observed_at=timezone.now(), reboot_pending=True, items=[
                            {"name": f"{tag.lower()}-openssl", "classification": "security",
                             "installed_version": "1.0", "version": "2.0"}])
    return device.pk


@factory(DevicePatchState)
def _state(client: Client, tag: str) -> DevicePatchState:
    return DevicePatchState.objects.get(device_id=_reported(client, tag))


@factory(DeviceUpdate)
def _update(client: Client, tag: str) -> DeviceUpdate:
    return DeviceUpdate.objects.filter(client=client).first() or DeviceUpdate.objects.get(
        device_id=_reported(client, tag))
