"""Roles and the capabilities they grant.

Every view and API route declares the capability it needs (`@requires(...)` on a view,
`permissions = {...}` on a viewset); `PermissionMiddleware` refuses any route that declares
none, so a forgotten declaration fails closed, and tests/test_routes.py fails the build.
"""

from __future__ import annotations

from collections.abc import Callable

from .choices import Role

# Capabilities. "<area>.view" reads, "<area>.change" writes.
CAPABILITIES = {
    "dashboard.view": "See the dashboard",
    "clients.view": "See clients, sites and contacts",
    "clients.change": "Create and edit clients, sites and contacts",
    "clients.manage": "Create and delete clients (tenants) themselves",
    "users.view": "See users and roles",
    "users.manage": "Create, edit and deactivate users; change role policies",
    "audit.view": "Read the audit log",
    "events.view": "See the event outbox and dead letters",
    "events.manage": "Replay dead letters",
    "webhooks.view": "See webhooks and their delivery log",
    "webhooks.manage": "Create, edit and delete webhooks",
    "profile": "Manage one's own profile, password, MFA and API tokens",
    "portal.view": "Use the client portal",
    "devices.view": "See devices, their inventory, history and licences",
    "devices.change": "Create, edit, import and discover devices; resolve conflicts",
    "agents.view": "See agents, enrollment tokens and quarantined agent payloads",
    "agents.manage": "Create and revoke enrollment tokens; approve, reject, revoke agents",
    "scripts.view": "See the script library, script runs and their output",
    "scripts.change": "Write and edit scripts in the library",
    "scripts.run": "Run scripts on devices, sites and clients",
    "scripts.approve": "Approve large script jobs (second person); use the kill switch",
    "tickets.view": "See tickets, queues and the helpdesk timeline",
    "tickets.change": "Create, reply to, assign and change tickets",
    "tickets.admin": "Manage queues, routing rules, templates, canned responses, quarantine",
    "billing.view": "See contracts and billing runs with their evidence",
    "billing.manage": "Create and edit contracts, work types and billing runs; approve runs",
    "monitoring.view": "See checks, policies, alerts, maintenance windows and notifications",
    "monitoring.change": "Edit policies, checks, maintenance windows, dependencies, channels",
    "alerts.ack": "Acknowledge, snooze and resolve alerts",
    "monitoring.ingest": "Create and revoke alert ingestion sources (their tokens)",
}

_STAFF_READ = {"dashboard.view", "clients.view", "profile", "devices.view",
               "monitoring.view"}

ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(CAPABILITIES) - {"portal.view"},
    Role.ADMIN: frozenset(CAPABILITIES) - {"portal.view"},
    Role.TECHNICIAN: frozenset(_STAFF_READ | {"clients.change", "webhooks.view",
                                                "devices.change"}
                               | {"tickets.view", "tickets.change"}
                               # Not scripts.change: the library is MSP-wide and runs on
                               # clients a technician does not see (owner/admin edit it).
                               | {"agents.view", "agents.manage", "scripts.view",
                                  "scripts.run"}
                               | {"monitoring.change", "alerts.ack"}),
    Role.DISPATCHER: frozenset(_STAFF_READ | {"users.view"} | {"agents.view", "scripts.view"}
                               | {"alerts.ack"}
                               | {"tickets.view", "tickets.change", "tickets.admin"}),
    Role.READONLY: frozenset(_STAFF_READ | {"users.view", "webhooks.view", "events.view"}
                             | {"agents.view", "scripts.view"} | {"tickets.view"}),
    Role.CLIENT_USER: frozenset({"portal.view", "profile"}),
}

# Roles that see every client. Technicians see assigned clients; client users their own.
GLOBAL_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.DISPATCHER, Role.READONLY})
# Roles whose MFA requirement is on unless an owner turns it off (RolePolicy).
MFA_REQUIRED_BY_DEFAULT = frozenset({Role.OWNER, Role.ADMIN})

PUBLIC = "public"  # declared by login, health checks and other routes for anyone
AUTHENTICATED = "authenticated"  # any signed-in user, e.g. logout


def has_capability(user, capability: str) -> bool:
    if capability == PUBLIC:
        return True
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if capability == AUTHENTICATED:
        return True
    return capability in ROLE_CAPABILITIES.get(user.role, frozenset())


def requires(capability: str) -> Callable:
    """Declare the capability a function or class-based view needs."""
    if capability not in CAPABILITIES and capability not in (PUBLIC, AUTHENTICATED):
        raise ValueError(f"unknown capability {capability!r}")

    def mark(view):
        view.wk_permission = capability
        return view

    return mark


def public(view):
    view.wk_permission = PUBLIC
    return view


def declared_permission(callback) -> str | dict | None:
    """The declaration of a resolved URL callback (function view, CBV or DRF view)."""
    decl = getattr(callback, "wk_permission", None)
    if decl is not None:
        return decl
    for attr in ("view_class", "cls"):
        klass = getattr(callback, attr, None)
        if klass is not None:
            decl = getattr(klass, "wk_permission", None) or getattr(klass, "permissions", None)
            if decl is not None:
                return decl
    return None
