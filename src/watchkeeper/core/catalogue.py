"""The event catalogue: every kind of event, declared once, typed and versioned.

Each app declares its events in `<app>/events.py` (core, whose `events.py` is the outbox,
in `core/event_kinds.py`) as frozen dataclasses:

    @declare("agent.offline")
    class AgentOffline(EventData):
        \"\"\"An approved agent missed its check-ins and is now offline.\"\"\"

        id: int
        device_id: int | None

        @classmethod
        def of(cls, agent) -> AgentOffline:
            return cls(id=agent.pk, device_id=agent.device_id)

and announce them with `events.emit(AgentOffline.of(agent), client=agent.client_id)`.

Constructing one is the check: a missing or unexpected field is a TypeError (the
dataclass' own keyword-only `__init__`), a value of the wrong type a TypeError from
`__post_init__`. Payloads are JSON: fields are `int`, `float`, `str`, `bool`, `None`,
`Literal[...]`, `list[...]`, `dict[str, ...]` and unions of them. A handler receives the
event rebuilt from its stored payload, so reading a field that is not declared is an
AttributeError, and the outbox, the webhook body and the generated reference
(`docs/events.md`, `manage.py events_reference`) all read this one registry.

`VERSION` counts incompatible changes of a kind's payload (a field removed, renamed or
retyped); adding a field keeps it. The version is stored with every event and sent with
every webhook: see docs/events.md for the promise made to receivers.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Attribute names that belong to the envelope, not to a payload.
RESERVED = frozenset({"envelope", "of", "payload", "field_types"})

_registry: dict[str, type[EventData]] = {}


class CatalogueError(TypeError):
    """An event that does not match its declaration (or has none)."""


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What the outbox knows of a stored event besides its payload."""

    id: Any  # uuid.UUID
    kind: str
    version: int
    client_id: int | None
    created_at: Any  # datetime
    row: Any = None  # the core.models.Event row, for transports (webhooks, notifications)


class EventData:
    """Base of every declared event. Subclasses are made frozen keyword-only dataclasses
    by `@declare`; their fields are the payload."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    MEANING: ClassVar[str] = ""
    # A short label for pickers (e.g. a channel's "Opened"); empty: the kind is shown.
    LABEL: ClassVar[str] = ""
    APP: ClassVar[str] = ""
    # Directed kinds go to one named recipient only (emit_directed, a webhook test): no
    # subscription, webhook or notification channel can ask for them.
    DIRECTED: ClassVar[bool] = False
    # Set on events rebuilt for a handler (never part of the payload).
    envelope: ClassVar[Envelope | None] = None

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and type(value) is not str:  # TextChoices members
                value = str(value)
                object.__setattr__(self, f.name, value)
            _check(value, hints[f.name], f"{self.KIND}.{f.name}")

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, instance, **values: Any):
        """The builder from a model instance. This default reads each declared field from
        the instance's attribute of the same name (`id`: its primary key; a field with a
        default keeps it when the instance has no such attribute); `values` give or
        override the rest. A kind whose fields do not map one to one writes its own."""
        for f in dataclasses.fields(cls):
            if f.name in values:
                continue
            if f.name == "id":
                values["id"] = instance.pk
            elif f.default is dataclasses.MISSING:
                values[f.name] = getattr(instance, f.name)
            elif hasattr(instance, f.name):
                values[f.name] = getattr(instance, f.name)
        return cls(**values)

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = _hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


_hint_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hint_cache.get(cls)
    if hints is None:
        hints = _hint_cache[cls] = typing.get_type_hints(cls)
    return hints


def _check(value: Any, tp: Any, where: str) -> None:
    if not _matches(value, tp):
        raise CatalogueError(f"{where}: {value!r} is not {type_name(tp)}")


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if tp is None or tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(tp))
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(tp))
    if origin is list or tp is list:
        if not isinstance(value, list):
            return False
        args = typing.get_args(tp)
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(tp)
        return all(isinstance(k, str) for k in value) and (
            not args or all(_matches(v, args[1]) for v in value.values()))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return False


def _supported(tp: Any) -> bool:
    if tp in (Any, int, float, str, bool, list, dict, None, type(None)):
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return all(_supported(a) for a in args)
    if origin is Literal:
        return all(isinstance(a, (str, int)) for a in args)
    if origin is list:
        return _supported(args[0])
    if origin is dict:
        return args[0] is str and _supported(args[1])
    return False


def type_name(tp: Any) -> str:
    """How the reference (and error messages) spell a field type."""
    if tp is Any:
        return "any"
    if tp is None or tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is list or tp is list:
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin is dict or tp is dict:
        return f"dict[str, {type_name(args[1])}]" if args else "dict"
    return getattr(tp, "__name__", str(tp))


def shape(cls: type) -> type:
    """Class decorator for a set of fields (and their builder) that several kinds share,
    e.g. every `alert.*` kind: subclass it once per kind with `@declare`."""
    if not (isinstance(cls, type) and issubclass(cls, EventData)):
        raise CatalogueError(f"{cls!r}: a shape is an EventData subclass")
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


def declare(kind: str, *, version: int = 1, directed: bool = False
            ) -> Callable[[type], type]:
    """Class decorator: declare `cls` as the event `kind`. Its docstring's first line is
    the one-line meaning the reference shows; its annotated fields are the payload."""

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, EventData)):
            raise CatalogueError(f"{kind}: declare an EventData subclass")
        doc = (cls.__dict__.get("__doc__") or "").strip()
        cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        cls.KIND, cls.VERSION, cls.DIRECTED = kind, version, directed
        cls.MEANING = doc.splitlines()[0] if doc else ""
        cls.APP = cls.__module__.split(".")[1] if cls.__module__.count(".") else ""
        register(cls)
        return cls

    return wrap


def register(cls: type[EventData]) -> None:
    kind = cls.KIND
    if not KIND_RE.match(kind):
        raise CatalogueError(f"{kind!r}: an event kind is dotted lower-case words")
    if not cls.MEANING:
        raise CatalogueError(f"{kind}: give the event a one-line meaning (its docstring)")
    if cls.VERSION < 1:
        raise CatalogueError(f"{kind}: versions start at 1")
    for name, tp in cls.field_types().items():
        if name in RESERVED or name.startswith("_"):
            raise CatalogueError(f"{kind}: {name!r} may not name a payload field")
        if not _supported(tp):
            raise CatalogueError(f"{kind}.{name}: {tp!r} is not a JSON payload type")
    existing = _registry.get(kind)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise CatalogueError(f"{kind} is declared twice ({existing.__module__}."
                             f"{existing.__qualname__} and {cls.__module__}."
                             f"{cls.__qualname__})")
    _registry[kind] = cls


_crud: dict[type, str] = {}  # model class -> kind prefix of its CRUD events
CRUD_VERBS = ("created", "changed", "deleted")


def declare_crud(model: type | str, *, module: str, prefix: str | None = None,
                 noun: str | None = None, verbs: Iterable[str] = CRUD_VERBS
                 ) -> tuple[type, ...]:
    """Declare the kinds `core.actions.create_object/update_object/delete_object` emit for
    `model` (a class or "app_label.Model"): `<prefix>.created` (id, repr), `.changed` (id,
    changed: the names of the fields that changed) and `.deleted` (id). `prefix` defaults
    to the model's name."""
    if isinstance(model, str):
        from django.apps import apps

        model = apps.get_model(model)
    prefix = prefix or model._meta.model_name
    noun = noun or str(model._meta.verbose_name)
    shapes = {"created": (f"A {noun} was created.", [("id", int), ("repr", str)]),
              "changed": (f"A {noun} was changed; `changed` names the fields.",
                          [("id", int), ("changed", list[str])]),
              "deleted": (f"A {noun} was deleted.", [("id", int)])}
    made = []
    for verb in verbs:
        meaning, fields = shapes[verb]
        name = "".join(p.title() for p in prefix.split("_")) + verb.title()
        cls = dataclasses.make_dataclass(name, fields, bases=(EventData,), frozen=True,
                                         kw_only=True, namespace={"__doc__": meaning})
        cls.__module__ = module
        cls.KIND, cls.VERSION, cls.MEANING = f"{prefix}.{verb}", 1, meaning
        cls.APP = module.split(".")[1] if module.count(".") else ""
        register(cls)
        made.append(cls)
    _crud[model] = prefix
    return tuple(made)


def crud_event(model: type, verb: str, **fields: Any) -> EventData:
    """The declared `<prefix>.<verb>` event of `model` (see declare_crud)."""
    prefix = _crud.get(model) or _crud.get(model._meta.concrete_model)
    if prefix is None:
        raise CatalogueError(
            f"{model._meta.label}: no CRUD events declared; add declare_crud({model.__name__}"
            ", module=__name__) to its app's events.py, or pass emit=False")
    return lookup(f"{prefix}.{verb}")(**fields)


def forget(kind: str) -> None:
    """Remove a declaration (for tests that declare kinds of their own)."""
    _registry.pop(kind, None)


def lookup(kind: str) -> type[EventData]:
    try:
        return _registry[kind]
    except KeyError:
        raise CatalogueError(
            f"undeclared event kind {kind!r}: declare it in its app's events.py "
            "(see docs/development.md, 'Events')") from None


def is_declared(kind: str) -> bool:
    return kind in _registry


def kinds(pattern: str | None = None, *, subscribable: bool = False) -> list[str]:
    """Every declared kind (matching the fnmatch `pattern`), sorted. `subscribable`: only
    the product's broadcast kinds, the ones a webhook or channel may ask for."""
    import fnmatch

    return sorted(k for k, cls in _registry.items()
                  if (pattern is None or fnmatch.fnmatchcase(k, pattern))
                  and not (subscribable and (cls.DIRECTED
                                             or not cls.__module__.startswith("watchkeeper."))))


def kinds_by_app(pattern: str | None = None) -> list[tuple[str, list[type[EventData]]]]:
    """The subscribable kinds grouped by app, for pickers in the UI."""
    groups: dict[str, list[type[EventData]]] = {}
    for kind in kinds(pattern, subscribable=True):
        cls = _registry[kind]
        groups.setdefault(cls.APP, []).append(cls)
    return sorted(groups.items())


def definitions() -> list[type[EventData]]:
    return [_registry[k] for k in sorted(_registry)]


def build(kind: str, payload: dict[str, Any] | None) -> EventData:
    """The declared event of `kind` with `payload`; a CatalogueError names what is wrong."""
    cls = lookup(kind)
    payload = dict(payload or {})
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    extra, missing = sorted(set(payload) - names), sorted(required - set(payload))
    if extra or missing:
        raise CatalogueError(f"{kind}: " + "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "",
                              f"undeclared {', '.join(extra)}" if extra else "") if part))
    return cls(**payload)


def load(row) -> EventData:
    """Rebuild the typed event of a stored `core.models.Event` row, envelope attached."""
    cls = lookup(row.kind)
    version = row.version
    if version != cls.VERSION:
        raise CatalogueError(f"{row.kind} v{version} stored, v{cls.VERSION} declared: "
                             "this event predates an incompatible change of its kind")
    event = build(row.kind, row.payload)
    object.__setattr__(event, "envelope", Envelope(
        id=row.id, kind=row.kind, version=version, client_id=row.client_id,
        created_at=row.created_at, row=row))
    return event


def fields_read_by(pattern_or_kinds: str | Iterable[str]) -> set[str]:
    """The fields every kind matching `pattern_or_kinds` declares (what a handler
    subscribed to them may read)."""
    names = kinds(pattern_or_kinds) if isinstance(pattern_or_kinds, str) \
        else list(pattern_or_kinds)
    common: set[str] | None = None
    for kind in names:
        own = {f.name for f in dataclasses.fields(_registry[kind])}
        common = own if common is None else common & own
    return common or set()


def row_of(event: EventData) -> Any:
    """The stored Event row behind a handler's argument."""
    return event.envelope.row


def autodiscover() -> None:
    """Import every installed app's `events` module and those of its sub-packages
    (`helpdesk/sla/events.py`), and core's `event_kinds`."""
    import importlib
    import importlib.util
    import pkgutil

    from django.apps import apps

    from . import event_kinds  # noqa: F401

    for config in apps.get_app_configs():
        if not config.name.startswith("watchkeeper."):
            continue
        names = [f"{config.name}.events"] + [
            f"{config.name}.{info.name}.events"
            for info in pkgutil.iter_modules(config.module.__path__) if info.ispkg]
        for name in names:
            if name != "watchkeeper.core.events" and importlib.util.find_spec(name):
                importlib.import_module(name)
