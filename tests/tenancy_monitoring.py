"""Tenant-isolation factories of the monitoring app, H1's models (see tenancy_fixtures)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.tenancy_fixtures import factory
from watchkeeper.core import events
from watchkeeper.core.models import Client, Contact, Site
from watchkeeper.inventory.models import Device
from watchkeeper.inventory.relations import actions as relation_actions
from watchkeeper.inventory.relations.choices import RelationKind
from watchkeeper.inventory.relations.models import DeviceRelation
from watchkeeper.monitoring import actions
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import ChannelKind, CheckKind, Scope, State
from watchkeeper.monitoring.ingest.models import IngestSource
from watchkeeper.monitoring.models import (
    Alert,
    Check,
    CheckOverride,
    CheckState,
    DeviceGroup,
    MaintenanceWindow,
    Notification,
    NotificationAttempt,
    NotificationChannel,
    Policy,
    PolicyAssignment,
    PolicyVersion,
)


def _device(client: Client, tag: str, suffix: str = "") -> Device:
    device, _ = Device.objects.get_or_create(client=client, name=f"{tag} Monitored{suffix}")
    return device


@factory(Policy)
def _policy(client: Client, tag: str) -> Policy:
    policy = Policy.objects.filter(client=client, name=f"{tag} Policy").first()
    return policy or actions.create_policy(actor=None, client=client, name=f"{tag} Policy",
                                           description=f"{tag} policy")


@factory(PolicyVersion)
def _version(client: Client, tag: str) -> PolicyVersion:
    return _policy(client, tag).versions.order_by("-version").first()


@factory(Check)
def _check(client: Client, tag: str) -> Check:
    policy = _policy(client, tag)
    check = policy.checks.filter(name=f"{tag} Disk").first()
    return check or actions.add_check(actor=None, policy=policy, name=f"{tag} Disk",
                                      kind=CheckKind.DISK, config={"critical": 90})


@factory(DeviceGroup)
def _group(client: Client, tag: str) -> DeviceGroup:
    group = DeviceGroup.objects.filter(client=client, name=f"{tag} Group").first()
    return group or actions.create_group(actor=None, client=client, name=f"{tag} Group",
                                         devices=[_device(client, tag)])


@factory(PolicyAssignment)
def _assignment(client: Client, tag: str) -> PolicyAssignment:
    return actions.assign_policy(actor=None, policy=_policy(client, tag), scope=Scope.GROUP,
                                 target=_group(client, tag))


@factory(CheckOverride)
def _override(client: Client, tag: str) -> CheckOverride:
    return actions.set_override(actor=None, check=_check(client, tag), scope=Scope.DEVICE,
                                target=_device(client, tag), config={"critical": 97})


def _alerting(client: Client, tag: str) -> Alert:
    check, device = _check(client, tag), _device(client, tag)
    alert = Alert.objects.filter(check_template=check, device=device).first()
    if alert is None:
        record_results([CheckResult(check.pk, device.pk, client.pk, State.CRITICAL,
                                    message=f"{tag} disk full")])
        alert = Alert.objects.get(check_template=check, device=device)
    return alert


@factory(CheckState)
def _state(client: Client, tag: str) -> CheckState:
    _alerting(client, tag)
    return CheckState.objects.get(check_template=_check(client, tag),
                                  device=_device(client, tag))


@factory(Alert)
def _alert(client: Client, tag: str) -> Alert:
    return _alerting(client, tag)


@factory(MaintenanceWindow)
def _window(client: Client, tag: str) -> MaintenanceWindow:
    return actions.create_maintenance(actor=None, client=client, name=f"{tag} Window",
                                      starts_at=timezone.now() + timedelta(days=1),
                                      duration_minutes=60)


@factory(DeviceRelation)
def _relation(client: Client, tag: str) -> DeviceRelation:
    site, _ = Site.objects.get_or_create(client=client, name=f"{tag} Monitored Site")
    return relation_actions.add_relation(actor=None, kind=RelationKind.UPLINK,
                                         parent=_device(client, tag, " Router"), site=site)


@factory(NotificationChannel)
def _channel(client: Client, tag: str) -> NotificationChannel:
    channel = NotificationChannel.objects.filter(client=client, name=f"{tag} Channel").first()
    if channel:
        return channel
    contact, _ = Contact.objects.get_or_create(client=client, name=f"{tag} On call",
                                               email="oncall@example.test")
    return actions.create_channel(actor=None, client=client, name=f"{tag} Channel",
                                  kind=ChannelKind.CONTACTS, contacts=[contact],
                                  digest_minutes=60)


@factory(Notification)
def _notification(client: Client, tag: str) -> Notification:
    from watchkeeper.monitoring.channels import notify

    channel, alert = _channel(client, tag), _alerting(client, tag)
    from watchkeeper.monitoring.events import AlertOpened

    event = events.emit(AlertOpened.of(alert), client=client.pk)
    notify.deliver(event, channel)  # a digest channel: stored, nothing sent
    return Notification.objects.get(event=event, channel=channel)


@factory(NotificationAttempt)
def _attempt(client: Client, tag: str) -> NotificationAttempt:
    return NotificationAttempt.objects.create(notification=_notification(client, tag),
                                              ok=False, detail=f"{tag} refused")


@factory(IngestSource)
def _ingest_source(client: Client, tag: str) -> IngestSource:
    from watchkeeper.monitoring.ingest import actions as ingest_actions

    existing = IngestSource.objects.filter(client=client, name=f"{tag} Alertmanager").first()
    if existing:
        return existing
    source, _token = ingest_actions.create_source(actor=None, client=client,
                                                  name=f"{tag} Alertmanager")
    return source
