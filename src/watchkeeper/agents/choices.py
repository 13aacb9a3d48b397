from django.db import models


class AgentStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"


class Connectivity(models.TextChoices):
    UNKNOWN = "unknown", "Never seen"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"


class ScriptLanguage(models.TextChoices):
    BASH = "bash", "Bash"
    PYTHON = "python", "Python"
    POWERSHELL = "powershell", "PowerShell"


class TargetKind(models.TextChoices):
    DEVICE = "device", "One device"
    SITE = "site", "A site's devices"
    CLIENT = "client", "A client's devices"


class RunStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting second approval"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class CommandStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Waiting for the signer"
    SIGNED = "signed", "Signed, waiting for the agent"
    DELIVERED = "delivered", "Delivered"
    SUCCEEDED = "succeeded", "Exit code 0"
    FAILED = "failed", "Non-zero exit code"
    TIMED_OUT = "timed_out", "Timed out"
    REFUSED = "refused", "Refused by the agent"
    INTERRUPTED = "interrupted", "Interrupted — outcome unknown"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


PENDING_COMMAND_STATES = (CommandStatus.AWAITING_APPROVAL, CommandStatus.QUEUED,
                          CommandStatus.SIGNED, CommandStatus.DELIVERED)
FINISHED_COMMAND_STATES = (CommandStatus.SUCCEEDED, CommandStatus.FAILED,
                           CommandStatus.TIMED_OUT, CommandStatus.REFUSED,
                           CommandStatus.INTERRUPTED, CommandStatus.EXPIRED,
                           CommandStatus.CANCELLED)
