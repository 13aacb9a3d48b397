from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    TECHNICIAN = "technician", "Technician"
    DISPATCHER = "dispatcher", "Dispatcher"
    READONLY = "readonly", "Read-only"
    CLIENT_USER = "client_user", "Client user"


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Delivered"
    DEAD = "dead", "Dead letter"


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    LOGIN = "login", "Logged in"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOGOUT = "logout", "Logged out"
    LOCKED = "locked", "Account locked"
    MFA = "mfa", "MFA changed"
    TOKEN = "token", "API token"
    REVEAL = "reveal", "Secret revealed"
    REPLAY = "replay", "Replayed"
