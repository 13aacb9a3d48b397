"""Tenant-isolation factories of the inventory app (see tests/tenancy_fixtures.py)."""

from __future__ import annotations

from django.utils import timezone

from tests.tenancy_fixtures import factory
from watchkeeper.core.models import Client
from watchkeeper.inventory import actions, services
from watchkeeper.inventory.choices import ChangeKind, ProposalState, RunStatus
from watchkeeper.inventory.models import (
    Device,
    DeviceChange,
    DeviceSection,
    DiscoveredHost,
    DiscoveryRun,
    FieldConflict,
    FieldProvenance,
    ImportRun,
    NetworkAddress,
    SoftwareInstall,
    SoftwareLicence,
)


@factory(Device)
def _device(client: Client, tag: str) -> Device:
    return actions.create_device(actor=None, client=client, name=f"{tag} Device",
                                 serial=f"{tag}-SERIAL", location=f"{tag} Room")


def _agent_device(client: Client, tag: str) -> Device:
    device = services.register_agent_device(client_id=client.pk, site_id=None,
                                            hostname=f"{tag} Host", agent_ref=f"{tag}-agent")
    services.apply_agent_inventory(
        device_id=device.pk, agent_ref=f"{tag}-agent", observed_at=timezone.now(),
        sections={"software": [{"name": f"{tag} Software", "version": "1", "source": "x"}],
                  "interfaces": [{"name": f"{tag} eth0", "mac": "02:00:00:00:00:01",
                                  "ipv4": ["198.51.100.7"], "ipv6": []}],
                  "services": [{"name": f"{tag} Service", "state": "running"}]})
    return device


@factory(DeviceSection)
def _section(client: Client, tag: str) -> DeviceSection:
    return DeviceSection.objects.get(device=_agent_device(client, tag), section="services")


@factory(SoftwareInstall)
def _software(client: Client, tag: str) -> SoftwareInstall:
    return SoftwareInstall.objects.get(device=_agent_device(client, tag))


@factory(NetworkAddress)
def _address(client: Client, tag: str) -> NetworkAddress:
    return NetworkAddress.objects.get(device=_agent_device(client, tag))


@factory(FieldProvenance)
def _provenance(client: Client, tag: str) -> FieldProvenance:
    return FieldProvenance.objects.get(device=_device(client, tag), field="location")


@factory(DeviceChange)
def _change(client: Client, tag: str) -> DeviceChange:
    return DeviceChange.objects.filter(device=_device(client, tag),
                                       kind=ChangeKind.CREATED).get()


@factory(FieldConflict)
def _conflict(client: Client, tag: str) -> FieldConflict:
    device = _agent_device(client, f"{tag} Conflicted")
    actions.update_device(actor=None, device=device, model=f"{tag} Typed Model")
    services.apply_agent_inventory(device_id=device.pk, agent_ref=f"{tag} Conflicted-agent",
                                   observed_at=timezone.now(),
                                   sections={"system": {"model": f"{tag} Reported Model"}})
    return FieldConflict.objects.get(device=device)


@factory(SoftwareLicence)
def _licence(client: Client, tag: str) -> SoftwareLicence:
    return actions.create_licence(actor=None, client=client, product=f"{tag} Licence",
                                  match=f"{tag} Software", seats=3, key="K-1")


@factory(ImportRun)
def _import(client: Client, tag: str) -> ImportRun:
    from watchkeeper.inventory.imports import importers

    return importers.upload(actor=None, client=client, filename=f"{tag}.csv",
                            raw=f"name,serial\n{tag} Imported,{tag}-IMP\n".encode())


@factory(DiscoveryRun)
def _discovery(client: Client, tag: str) -> DiscoveryRun:
    return DiscoveryRun.objects.create(client=client, subnet="192.0.2.0/28",
                                       status=RunStatus.DONE, error=f"{tag} note")


@factory(DiscoveredHost)
def _host(client: Client, tag: str) -> DiscoveredHost:
    return DiscoveredHost.objects.create(run=_discovery(client, tag), address="192.0.2.5",
                                         alive=True, snmp_name=f"{tag} Switch",
                                         state=ProposalState.PROPOSED)


