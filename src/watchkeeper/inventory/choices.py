from django.db import models


class DeviceKind(models.TextChoices):
    SERVER = "server", "Server"
    WORKSTATION = "workstation", "Workstation"
    LAPTOP = "laptop", "Laptop"
    VM = "vm", "Virtual machine"
    NETWORK = "network", "Network device"
    PRINTER = "printer", "Printer"
    OTHER = "other", "Other"


class LifecycleStatus(models.TextChoices):
    IN_STOCK = "in_stock", "In stock"
    DEPLOYED = "deployed", "Deployed"
    RETIRED = "retired", "Retired"


class SourceKind(models.TextChoices):
    """Where a fact about a device came from. Order matters for display only; which value
    wins is decided by `services` (a person's or an import's value is never overwritten
    silently by an agent)."""

    AGENT = "agent", "Agent"
    NETWORK_SCAN = "network_scan", "Network scan"
    IMPORT = "import", "Import"
    MANUAL = "manual", "Manual"


class ChangeKind(models.TextChoices):
    SOFTWARE_INSTALLED = "software_installed", "Software installed"
    SOFTWARE_REMOVED = "software_removed", "Software removed"
    SOFTWARE_UPGRADED = "software_upgraded", "Software upgraded"
    HARDWARE_CHANGED = "hardware_changed", "Hardware changed"
    IP_CHANGED = "ip_changed", "IP changed"
    FIELD_CHANGED = "field_changed", "Field changed"
    CREATED = "created", "Created"


class ConflictStatus(models.TextChoices):
    OPEN = "open", "Open"
    KEPT = "kept", "Kept current value"
    TAKEN = "taken", "Took proposed value"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    MAPPED = "mapped", "Mapped"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ProposalState(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted"
    IGNORED = "ignored", "Ignored"
    KNOWN = "known", "Already in inventory"
