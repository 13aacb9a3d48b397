"""Kinds and states of the monitoring app, as data."""

from django.db import models


class CheckKind(models.TextChoices):
    # Agent-side: evaluated from what agents report.
    DISK = "disk", "Disk used % / free space"
    CPU = "cpu", "CPU sustained over a window"
    MEMORY = "memory", "Memory sustained over a window"
    SERVICE = "service", "Service running"
    PROCESS = "process", "Process present"
    REBOOT = "reboot", "Pending reboot"
    AGENT_OFFLINE = "agent_offline", "Agent offline"
    SCRIPT = "script", "Custom script (exit code)"
    METRIC = "metric", "Any metric threshold"
    # Server-side: run by the poller.
    PING = "ping", "ICMP ping"
    TCP = "tcp", "TCP port"
    HTTP = "http", "HTTP(S)"
    TLS = "tls", "TLS certificate"
    DNS = "dns", "DNS record"
    SNMP = "snmp", "SNMP"
    # Passive and predictive.
    HEARTBEAT = "heartbeat", "Passive heartbeat"
    DISK_FORECAST = "disk_forecast", "Disk full forecast"
    CERT_EXPIRY = "cert_expiry", "Certificate expiry ahead"
    SMART = "smart", "SMART pre-failure"
    # Alerts posted by another monitoring tool (ingest/).
    EXTERNAL = "external", "Alerts from another tool"


AGENT_KINDS = frozenset({CheckKind.DISK, CheckKind.CPU, CheckKind.MEMORY, CheckKind.SERVICE,
                         CheckKind.PROCESS, CheckKind.REBOOT, CheckKind.AGENT_OFFLINE,
                         CheckKind.SCRIPT, CheckKind.METRIC})
SERVER_KINDS = frozenset({CheckKind.PING, CheckKind.TCP, CheckKind.HTTP, CheckKind.TLS,
                          CheckKind.DNS, CheckKind.SNMP})
# The same set in a stable order: the API schema names this enum (ServerCheckKindEnum).
SERVER_KIND_VALUES = sorted(SERVER_KINDS)



class State(models.TextChoices):
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"
    UNKNOWN = "unknown", "Unknown"


# Worse is larger; used to pick the worst of several readings of one check.
STATE_RANK = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}


class AlertStatus(models.TextChoices):
    OPEN = "open", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.SNOOZED)


class Suppression(models.TextChoices):
    NONE = "", "Not suppressed"
    MAINTENANCE = "maintenance", "Maintenance window"
    DEPENDENCY = "dependency", "Parent down"
    FLAPPING = "flapping", "Flapping"


class Scope(models.TextChoices):
    GLOBAL = "global", "Everywhere"
    CLIENT = "client", "Client"
    SITE = "site", "Site"
    GROUP = "group", "Device group"
    DEVICE = "device", "Device"


# Inheritance order: a later level overrides an earlier one.
SCOPE_ORDER = [Scope.GLOBAL, Scope.CLIENT, Scope.SITE, Scope.GROUP, Scope.DEVICE]




class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email (SMTP)"
    CONTACTS = "contacts", "Email to the client's contacts"
    WEBHOOK = "webhook", "Webhook"


class WebhookFormat(models.TextChoices):
    GENERIC = "generic", "Generic JSON"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (will retry)"
    SUPPRESSED = "suppressed", "Suppressed"
    DIGEST = "digest", "Waiting for the digest"
