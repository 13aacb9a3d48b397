"""Tenant-isolation fixtures: one factory per tenant-owned model, and a walker over every
URL pattern of the project.

Every model that declares `tenant_path` must have a factory here (tests/test_tenant_isolation
fails otherwise). A factory takes the client the object must belong to and a tag, and
returns one object of its model owned by that client, with the tag in its visible text
(name, description, error...), so a test can tell whether another tenant's data leaked.
Register a new app's models with `@factory(Model)`, here or in a module of its own named
`tests/tenancy_<app>.py` (imported automatically at the end of this module).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter, UUIDConverter
from django.utils.regex_helper import normalize
from django.utils.text import slugify

from watchkeeper.core import actions, audit, events
from watchkeeper.core.choices import AuditAction, DeliveryStatus
from watchkeeper.core.models import (
    AuditEntry,
    Client,
    Contact,
    Event,
    EventDelivery,
    Site,
    WebhookDelivery,
    WebhookEndpoint,
)
from watchkeeper.core.permissions import PUBLIC, declared_permission

Factory = Callable[[Client, str], Model]
FACTORIES: dict[type[Model], Factory] = {}


def factory(model: type[Model]) -> Callable[[Factory], Factory]:
    def register(func: Factory) -> Factory:
        FACTORIES[model] = func
        return func

    return register


def tenant_models() -> list[type[Model]]:
    """Every installed model that declares a tenant_path."""
    return [m for m in apps.get_models() if getattr(m, "tenant_path", None) is not None]


def build_world(client: Client, tag: str) -> dict[type[Model], Model]:
    """One object of every registered tenant-owned model, owned by `client`."""
    return {model: make(client, tag) for model, make in FACTORIES.items()}


# --- core ---------------------------------------------------------------------------------

@factory(Client)
def _client(client: Client, tag: str) -> Client:
    return client  # the tenant itself; its name carries the tag (see the test's fixtures)


@factory(Site)
def _site(client: Client, tag: str) -> Site:
    return actions.create_site(actor=None, client=client, name=f"{tag} Site",
                               address=f"1 {tag} Street")


@factory(Contact)
def _contact(client: Client, tag: str) -> Contact:
    site = _site(client, f"{tag} Branch")
    return actions.create_contact(actor=None, client=client, site=site,
                                  name=f"{tag} Contact", email=f"{slugify(tag)}@example.test",
                                  phone="+1 555 0199")


@factory(AuditEntry)
def _audit_entry(client: Client, tag: str) -> AuditEntry:
    return audit.record(actor=None, action=AuditAction.UPDATE, object_type="test.thing",
                        object_id="1", object_repr=f"{tag} audited thing", client_id=client.pk,
                        changes={"note": [None, tag]})


@factory(Event)
def _event(client: Client, tag: str) -> Event:
    from tests.event_kinds import TestHappened

    return events.emit(TestHappened(note=tag), client=client)


@factory(EventDelivery)
def _event_delivery(client: Client, tag: str) -> EventDelivery:
    event = _event(client, tag)
    return EventDelivery.objects.create(event=event, handler=f"test:{slugify(tag)}",
                                        status=DeliveryStatus.DEAD, attempts=8,
                                        last_error=f"{tag} failure")


@factory(WebhookEndpoint)
def _webhook(client: Client, tag: str) -> WebhookEndpoint:
    return actions.create_webhook(actor=None, name=f"{tag} Hook",
                                  url=f"https://{slugify(tag)}.example.test/hook",
                                  secret=f"{tag}-secret-0123456789", client=client)


@factory(WebhookDelivery)
def _webhook_delivery(client: Client, tag: str) -> WebhookDelivery:
    endpoint = _webhook(client, f"{tag} log")
    event = _event(client, tag)
    return WebhookDelivery.objects.create(endpoint=endpoint, event=event, attempt=1,
                                          status_code=500, error=f"{tag} said no")


# --- Route walking ------------------------------------------------------------------------

@dataclass
class Route:
    """One URL pattern of the project, with everything needed to request it."""

    template: str  # "/api/v1/sites/%(pk)s/"
    params: list[str]
    callback: Callable
    name: str
    converters: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.template

    @property
    def is_api(self) -> bool:
        return self.template.startswith("/api/")

    @property
    def permission(self):
        return declared_permission(self.callback)

    def is_public(self, method: str = "GET") -> bool:
        """Whether anyone, signed in or not, may use `method` on this route."""
        decl = self.permission
        if isinstance(decl, dict):
            return (decl.get(method) or decl.get("*")) == PUBLIC
        return decl == PUBLIC

    def url(self, **kwargs) -> str:
        return self.template % {k: str(v) for k, v in kwargs.items()}

    def sample_kwargs(self) -> dict[str, str]:
        """Syntactically valid values for every URL parameter (for anonymous probes)."""
        values = {}
        for param in self.params:
            converter = self.converters.get(param)
            if isinstance(converter, UUIDConverter):
                values[param] = str(uuid.uuid4())
            elif isinstance(converter, IntConverter):
                values[param] = "1"
            else:
                values[param] = "1"
        return values


def _fmt(pattern) -> tuple[str, list[str]]:
    options = normalize(pattern.regex.pattern)
    if not options:
        return "", []
    fmt, params = options[0]
    return fmt, list(params)


def walk(resolver: URLResolver | None = None, prefix: str = "/", params: list | None = None,
         converters: dict | None = None, name_prefix: str = "") -> Iterator[Route]:
    """Every URL pattern, recursively through includes."""
    resolver = resolver or get_resolver()
    params = params or []
    converters = converters or {}
    for entry in resolver.url_patterns:
        fmt, own = _fmt(entry.pattern)
        conv = {**converters, **getattr(entry.pattern, "converters", {})}
        if isinstance(entry, URLResolver):
            ns = f"{name_prefix}{entry.namespace}:" if entry.namespace else name_prefix
            yield from walk(entry, prefix + fmt, params + own, conv, ns)
        elif isinstance(entry, URLPattern):
            name = f"{name_prefix}{entry.name}" if entry.name else ""
            yield Route(prefix + fmt, params + own, entry.callback, name, conv)


def view_model(callback) -> type[Model] | None:
    """The model a route's URL parameters name: `wk_model` on the view (function or class),
    else the queryset model of a DRF view."""
    model = getattr(callback, "wk_model", None)
    for attr in ("view_class", "cls"):
        klass = getattr(callback, attr, None)
        if klass is None:
            continue
        model = model or getattr(klass, "wk_model", None)
        queryset = getattr(klass, "queryset", None)
        if model is None and queryset is not None:
            model = queryset.model
    return model


def _load_app_factories() -> None:
    for module in sorted(Path(__file__).parent.glob("tenancy_*.py")):
        if module.stem != "tenancy_fixtures":
            importlib.import_module(f"tests.{module.stem}")


_load_app_factories()
