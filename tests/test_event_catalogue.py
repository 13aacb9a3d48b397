"""The event catalogue: every kind declared and typed, emit() and handlers held to it, and
the generated reference (docs/events.md) kept true."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from pathlib import Path

import pytest

from watchkeeper.core import catalogue, event_reference, events
from watchkeeper.core.catalogue import CatalogueError, EventData, declare
from watchkeeper.core.models import Event, EventDelivery

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def probe_kind():
    """A kind declared for one test only."""

    @declare("probe.happened")
    class ProbeHappened(EventData):
        """A probe event of the catalogue's tests."""

        id: int
        name: str
        device_id: int | None
        tags: list[str]
        state: typing.Literal["ok", "failed"] = "ok"

    yield ProbeHappened
    catalogue.forget("probe.happened")


def _sample(tp):
    """A valid value of a declared field type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return args[0]
    if origin in (typing.Union, __import__("types").UnionType):
        return _sample(next(a for a in args if a is not type(None)))
    return {int: 1, float: 1.5, str: "x", bool: True, list: [], dict: {},
            typing.Any: None}.get(tp) if origin is None else ([] if origin is list else {})


def test_every_declared_kind_builds_and_survives_a_round_trip():
    defs = catalogue.definitions()
    assert defs, "nothing is declared"
    for cls in defs:
        assert cls.MEANING and cls.VERSION >= 1 and cls.APP, cls
        values = {name: _sample(tp) for name, tp in cls.field_types().items()}
        event = cls(**values)
        assert catalogue.build(cls.KIND, event.payload()) == event
        for name in values:  # each field is required or has a declared default
            field = next(f for f in dataclasses.fields(cls) if f.name == name)
            if field.default is dataclasses.MISSING:
                with pytest.raises(TypeError):
                    cls(**{k: v for k, v in values.items() if k != name})


def test_emit_refuses_a_missing_an_extra_or_a_mistyped_field(db, probe_kind):
    good = {"id": 1, "name": "n", "device_id": None, "tags": ["a"]}
    events.emit(probe_kind(**good))
    with pytest.raises(TypeError, match="device_id"):
        probe_kind(id=1, name="n", tags=[])
    with pytest.raises(TypeError, match="colour"):
        probe_kind(**good, colour="red")
    for field, value in (("id", "1"), ("id", True), ("tags", ["a", 2]), ("state", "maybe"),
                         ("device_id", 1.5)):
        with pytest.raises(CatalogueError, match=field):
            probe_kind(**{**good, field: value})
    # A stored payload is checked the same way when a handler gets it.
    with pytest.raises(CatalogueError, match="missing device_id"):
        catalogue.build("probe.happened", {"id": 1, "name": "n", "tags": []})
    with pytest.raises(CatalogueError, match="undeclared colour"):
        catalogue.build("probe.happened", {**good, "colour": "red"})
    assert Event.objects.filter(kind="probe.happened").count() == 1


def test_emit_refuses_an_undeclared_kind(db):
    class Undeclared(EventData):
        """Never declared."""

    with pytest.raises(CatalogueError, match="undeclared event kind"):
        catalogue.lookup("nobody.declared_this")
    for bad in ("site.created", {"kind": "site.created"}, Undeclared()):
        with pytest.raises(CatalogueError, match="takes a declared event"):
            events.emit(bad)
    with pytest.raises(TypeError):
        events.emit(catalogue.lookup("site.created")(id=1, repr="x"), payload={"id": 2})
    assert not Event.objects.exists()


def test_a_stored_event_of_an_older_version_fails_loudly(db, probe_kind):
    row = events.emit(probe_kind(id=1, name="n", device_id=None, tags=[]))
    Event.objects.filter(pk=row.pk).update(version=0)
    row.refresh_from_db()
    with pytest.raises(CatalogueError, match="v0 stored, v1 declared"):
        events.typed(row)


def test_declarations_are_checked():
    with pytest.raises(CatalogueError, match="JSON payload type"):
        @declare("probe.bad_type")
        class Bad(EventData):
            """Bad."""

            at: object
    with pytest.raises(CatalogueError, match="one-line meaning"):
        @declare("probe.no_meaning")
        class NoMeaning(EventData):
            id: int
    with pytest.raises(CatalogueError, match="may not name"):
        @declare("probe.reserved")
        class Reserved(EventData):
            """Reserved."""

            envelope: int
    assert not catalogue.is_declared("probe.bad_type")


def test_a_handler_receives_the_typed_event_and_an_undeclared_field_fails(db, probe_kind):
    seen = []

    def reads_declared(event, name):
        seen.append((event.name, event.tags, event.envelope.client_id))

    def reads_undeclared(event, name):
        seen.append(event.ticket)

    events.subscribe("probe.*", name="tests.catalogue.ok")(reads_declared)
    events.subscribe("probe.*", name="tests.catalogue.bad")(reads_undeclared)
    try:
        row = events.emit(probe_kind(id=1, name="n", device_id=None, tags=["t"]))
        events.dispatch_due()
    finally:
        events._handlers.pop("tests.catalogue.ok", None)
        events._handlers.pop("tests.catalogue.bad", None)
    assert row.version == 1
    assert seen == [("n", ["t"], None)]
    bad = EventDelivery.objects.get(event=row, handler="tests.catalogue.bad")
    assert "AttributeError" in bad.last_error and "ticket" in bad.last_error


def _attributes_read(func) -> set[str]:
    """`event.X` read in `func` (its first parameter), found in its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    fn = tree.body[0]
    param = fn.args.args[0].arg
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == param}


def test_handlers_read_only_declared_fields():
    """Statically: a subscribed handler reads, of its event, only fields that every kind
    it is subscribed to declares (plus the envelope)."""
    problems = []
    for sub in events._handlers.values():
        matched = catalogue.kinds(sub.pattern)
        if not matched:
            problems.append(f"{sub.name} subscribes to {sub.pattern!r}: no such kind")
            continue
        allowed = catalogue.fields_read_by(matched) | {"envelope", "KIND", "VERSION",
                                                       "payload"}
        read = _attributes_read(sub.func)
        if read - allowed:
            problems.append(f"{sub.name} reads {sorted(read - allowed)} of {matched}")
    assert not problems, problems


def test_the_static_check_catches_an_undeclared_read():
    def handler(event, name):
        return event.device_id, event.ticket

    assert _attributes_read(handler) == {"device_id", "ticket"}
    allowed = catalogue.fields_read_by(["agent.online", "agent.offline"])
    assert "ticket" not in allowed and "device_id" in allowed


def test_the_event_reference_in_docs_is_up_to_date():
    current = (ROOT / "docs" / "events.md").read_text()
    assert current == event_reference.render(), (
        "docs/events.md is out of date: run `watchkeeper events_reference --write "
        "docs/events.md`")


def test_no_emit_site_passes_a_kind_string_or_a_payload():
    """Every emit in src/ passes a declared event object: a string kind or a payload dict
    (the old way) is caught here, before any test has to reach that code path."""
    problems = []
    for path in sorted((ROOT / "src" / "watchkeeper").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("emit", "emit_many", "emit_directed")):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, (ast.Constant, ast.JoinedStr)) or any(
                    k.arg == "payload" for k in node.keywords):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not problems, problems


def test_the_default_builder_reads_the_instance(probe_kind):
    from types import SimpleNamespace

    device = SimpleNamespace(pk=3, name="srv", device_id=None, tags=["a"], state="failed")
    assert probe_kind.of(device) == probe_kind(id=3, name="srv", device_id=None, tags=["a"],
                                               state="failed")
    assert probe_kind.of(SimpleNamespace(pk=4, name="x", device_id=1, tags=[])).state == "ok"
    assert probe_kind.of(device, name="other").name == "other"
    with pytest.raises(AttributeError, match="tags"):
        probe_kind.of(SimpleNamespace(pk=5, name="x", device_id=None))
