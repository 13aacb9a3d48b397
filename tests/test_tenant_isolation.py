"""The tenant-isolation walk: as users of client A, every route of the project, every method,
must neither show nor touch anything of client B.

Client B owns one object of every tenant-owned model (tests/tenancy_fixtures.py), each with
MARKER in its text. For a technician assigned to A and a portal user of A:
- every list route (no URL parameters) answers GET without MARKER in the body, also when the
  query string names B's client or searches for part of the marker;
- every detail route gets its parameters filled with the id of B's object of the route's
  model and answers GET/POST/PUT/PATCH/DELETE with 404 (or 403/405 when the role lacks the
  capability entirely), never 2xx, and B's object is unchanged afterwards.
"""

from __future__ import annotations

import re

import pytest
from rest_framework.fields import CharField, ChoiceField, EmailField, SlugField, URLField

from tests.conftest import sign_in
from tests.factories import make_client, make_user
from tests.tenancy_fixtures import FACTORIES, build_world, tenant_models, view_model, walk
from watchkeeper.core import actions, audit
from watchkeeper.core.choices import Role
from watchkeeper.core.models import Contact, Site, WebhookEndpoint

pytestmark = pytest.mark.django_db

MARKER = "Quixbeq"
PROBE = MARKER[1:-1]  # "uixbe": a search for it finds B's rows if scoping is missing

# Routes with URL parameters that name no tenant-owned row, each with the reason.
EXEMPT: dict[str, str] = {
    "role_policy": "Keyed by role name; role policies are MSP-wide (users.manage only).",
    "heartbeat-ping": "Public by design: the job's unguessable uuid is the credential.",
    "heartbeat-ping-start": "Public by design: the job's unguessable uuid is the credential.",
    "heartbeat-ping-fail": "Public by design: the job's unguessable uuid is the credential.",
    "agent-dist-file": "Public by design: the agent's wheels and .deb, the same for every "
                       "client (no tenant data; names checked against the built manifest).",
}

REFUSED = {403, 404, 405}
# Numbers no id can be (past 64 bits, exponent notation, negative, zero): every filter must
# refuse or ignore them, never hand them to the database (a 500, or a cut-off export).
OVERSIZED = ("?client=1e30&site=99999999999999999999&assignee=9223372036854775808"
             "&queue=-1&device=0&contact=1e30&page=99999999999999999999&check_template=1e30"
             "&policy=1e30&ticket=1e30&agent=1e30&run=1e30&actor=1e30&channel=1e30")
# Detail routes the walk must reach (guards against a walker that silently skips them).
WALKED_API_ROUTES = {"client-detail", "site-detail", "contact-detail", "audit-detail",
                     "event-detail", "delivery-detail", "delivery-replay", "webhook-detail",
                     "webhook-deliveries"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def client_b(db):
    # Overrides the conftest persona: B's own name carries the marker too.
    return make_client(f"Borealis {MARKER}")


@pytest.fixture
def portal_a(db, client_a):
    return make_user("pat@acme.test", Role.CLIENT_USER, client=client_a)


@pytest.fixture
def worlds(client_a, client_b):
    return build_world(client_a, "Alpha"), build_world(client_b, MARKER)


def _snapshot(obj):
    fresh = type(obj)._default_manager.filter(pk=obj.pk).first()
    return None if fresh is None else audit.snapshot(fresh)


def test_every_tenant_owned_model_has_a_factory():
    # Given every installed model that declares tenant_path
    missing = [m._meta.label for m in tenant_models() if m not in FACTORIES]

    # Then each has a factory in tests/tenancy_fixtures.py, so the walk covers it
    assert not missing, f"add a factory to tests/tenancy_fixtures.py for: {missing}"


def test_exemptions_name_existing_routes_the_walk_could_not_check_otherwise():
    # Given the routes of the project
    routes = {r.label: r for r in walk()}

    # Then every exemption names a real route with URL parameters and no known model, so
    # the list cannot keep stale entries or hide a route the walk can check
    for label in EXEMPT:
        assert label in routes, f"EXEMPT names no route: {label}"
        assert routes[label].params and view_model(routes[label].callback) is None, label


def test_factories_build_objects_owned_by_the_given_client(client_a):
    # Given the factories, when each builds an object for client A
    for model, obj in build_world(client_a, "Alpha").items():
        # Then the object is of that model and belongs to A
        assert isinstance(obj, model)
        assert audit.client_id_of(obj) == client_a.pk, model


@pytest.mark.parametrize("persona", ["tech_a", "portal_a"])
def test_list_routes_never_show_another_tenants_data(request, client, persona, worlds,
                                                     client_b):
    # Given users of client A and one object of every tenant-owned model in A and B
    user = request.getfixturevalue(persona)
    client.raise_request_exception = False  # a crashing page is reported, not fatal
    leaks, errors = [], []

    # When they GET every route without URL parameters
    for route in walk():
        if route.params:
            continue
        # The search term matches B's rows but differs from MARKER: pages may echo it.
        for query in ("", f"?client={client_b.pk}&q={PROBE}&search={PROBE}", OVERSIZED):
            sign_in(client, user)
            response = client.get(route.url() + query)
            if response.status_code == 500:
                errors.append(f"{route.label}{query}: {response.status_code}")
            if getattr(response, "streaming", False):
                continue
            if MARKER.lower() in response.content.decode(errors="replace").lower():
                leaks.append(f"{route.label}{query}")

    # Then no page or API response mentions B's marker, and none fails
    assert not leaks, f"{persona} sees client B's data on: {leaks}"
    assert not errors, f"{persona}: server errors on {errors}"


@pytest.mark.parametrize("persona", ["tech_a", "portal_a"])
def test_detail_routes_refuse_another_tenants_objects(request, client, persona, worlds):
    # Given users of client A and one object of every tenant-owned model in B
    user = request.getfixturevalue(persona)
    client.raise_request_exception = False
    _, world_b = worlds
    unknown, answered, changed, checked = [], [], [], set()

    # When they call every route with URL parameters, filled with B's object, every method
    for route in walk():
        if not route.params or route.label in EXEMPT:
            continue
        if route.is_public("GET"):
            unknown.append(f"{route.label}: public route with parameters; exempt it or "
                           f"make it non-public")
            continue
        model = view_model(route.callback)
        if model is None:
            unknown.append(f"{route.label}: no wk_model / queryset to fill {route.params}")
            continue
        if getattr(model, "tenant_path", None) is None:
            continue  # not tenant-owned (users, tokens): covered by permission tests
        target = world_b.get(model)
        if target is None:
            unknown.append(f"{route.label}: no factory for {model._meta.label}")
            continue
        before = _snapshot(target)
        url = route.url(**{p: target.pk for p in route.params})
        checked.add(route.label)
        for method in METHODS:
            sign_in(client, user)
            response = client.generic(method, url, data="{}", content_type="application/json")
            if response.status_code not in REFUSED:
                answered.append(f"{method} {route.label} ({url}): {response.status_code}")
        if _snapshot(target) != before:
            changed.append(f"{route.label}: {model._meta.label} {target.pk}")

    # Then every route could be checked, refused each method, and changed nothing of B
    assert WALKED_API_ROUTES <= checked, WALKED_API_ROUTES - checked
    assert not unknown, "routes the walk cannot check:\n" + "\n".join(unknown)
    assert not answered, f"{persona} reached client B's objects:\n" + "\n".join(answered)
    assert not changed, f"{persona} changed client B's objects: {changed}"


def test_api_writes_naming_another_tenant_are_refused(as_user, tech_a, client_a, client_b):
    # Given B's site and contact, and A's own site
    site_b = actions.create_site(actor=None, client=client_b, name=f"{MARKER} Depot")
    contact_b = actions.create_contact(actor=None, client=client_b, name=f"{MARKER} Kim")
    site_a = actions.create_site(actor=None, client=client_a, name="Acme HQ")
    api = as_user(tech_a)
    json = "application/json"

    # When A's technician creates sites and contacts that name B's client or B's site
    attempts = {
        "site in B": api.post("/api/v1/sites/", {"client": client_b.pk, "name": "Sneaky"},
                              content_type=json),
        "contact in B": api.post("/api/v1/contacts/", {"client": client_b.pk, "name": "Sneaky"},
                                 content_type=json),
        "contact of A at B's site": api.post(
            "/api/v1/contacts/", {"client": client_a.pk, "site": site_b.pk, "name": "Sneaky"},
            content_type=json),
        "move A's site to B": api.patch(f"/api/v1/sites/{site_a.pk}/", {"client": client_b.pk},
                                        content_type=json),
        "webhook for B": api.post("/api/v1/webhooks/", {"client": client_b.pk, "name": "x",
                                                        "url": "https://x.test/"},
                                  content_type=json),
    }

    # Then each is refused (400 on the field, or 403 without the capability), nothing is
    # written, and the error never confirms that B's rows exist
    for label, response in attempts.items():
        assert response.status_code in (400, 403), (label, response.status_code)
        body = response.content.decode()
        assert MARKER not in body and client_b.name not in body, label
    assert attempts["site in B"].json()["errors"]["client"]
    assert attempts["contact of A at B's site"].json()["errors"]["site"]
    assert not Site.objects.filter(name="Sneaky").exists()
    assert not Contact.objects.filter(name="Sneaky").exists()
    assert not WebhookEndpoint.objects.exists()
    site_a.refresh_from_db()
    contact_b.refresh_from_db()
    assert site_a.client == client_a and contact_b.client == client_b


def test_admin_writes_that_an_owner_scoped_user_could_not_see_succeed(as_user, admin_user,
                                                                        client_b):
    # Given an admin (sees every client): the refusal above is scoping, not a broken form
    api = as_user(admin_user)

    # When they create a site in B
    response = api.post("/api/v1/sites/", {"client": client_b.pk, "name": "Legit"},
                        content_type="application/json")

    # Then it is created
    assert response.status_code == 201, response.content


def test_the_walk_fills_routes_with_real_ids(as_user, owner, worlds):
    # Given an owner, who sees every client, and the same filled URLs as the walk above
    _, world_b = worlds
    api = as_user(owner)
    answered = {}

    # When they GET the API detail routes filled with B's objects
    for route in walk():
        if route.label in WALKED_API_ROUTES and route.label != "delivery-replay":
            target = world_b[view_model(route.callback)]
            answered[route.label] = api.get(route.url(**{p: target.pk for p in route.params}))

    # Then each answers 200 with B's data: the refusals in the walk come from scoping
    assert set(answered) == WALKED_API_ROUTES - {"delivery-replay"}
    for label, response in answered.items():
        assert response.status_code == 200, (label, response.status_code)
        if label != "webhook-deliveries":
            assert MARKER.lower() in response.content.decode().lower() or \
                label in ("client-detail",) and MARKER in response.json()["name"], label


def _copy_payload(serializer_class, obj) -> dict:
    """B's object as its API would show it, with every plain text field altered so that a
    uniqueness rule cannot be what refuses the copy: what remains are B's references."""
    serializer = serializer_class(obj, context={"request": None})
    data = dict(serializer.data)
    for name, value in list(data.items()):
        field = serializer.fields.get(name)
        if field is None or field.read_only:
            data.pop(name, None)
        elif isinstance(field, SlugField) and value:
            data[name] = f"{value}-copy"
        elif isinstance(field, CharField) and not isinstance(field, ChoiceField) \
                and isinstance(value, str) and value:
            data[name] = value if isinstance(field, URLField | EmailField) else f"{value} copy"
    return data


def _post_copies(client, user, world_b, client_b) -> dict[str, tuple[int, bool, dict]]:
    """POST, as `user`, a copy of B's object to every API list route that accepts POST;
    {route: (status, whether B gained a row, payload)}."""
    outcome = {}
    for route in walk():
        klass = getattr(route.callback, "cls", None)
        decl = route.permission
        if route.params or klass is None or not isinstance(decl, dict) or "POST" not in decl:
            continue
        model = view_model(route.callback)
        if model is None or model not in world_b or not getattr(klass, "serializer_class",
                                                                None):
            continue
        payload = _copy_payload(klass.serializer_class, world_b[model])
        lookup = "id" if model.tenant_path == "id" else model.tenant_path
        owned_by_b = model._default_manager.filter(**{lookup: client_b.pk})
        before = owned_by_b.count()
        sign_in(client, user)
        response = client.post(route.url(), payload, content_type="application/json")
        outcome[route.label] = (response.status_code, owned_by_b.count() != before, payload)
    return outcome


CORE_CREATE_ROUTES = {"client-list", "site-list", "contact-list", "webhook-list"}


def test_api_creates_copying_another_tenants_object_are_refused(client, tech_a, worlds,
                                                                 client_b):
    # Given A's technician, and for every API list route that accepts POST the
    # representation of B's object of that route's model (naming B's client, sites...)
    _, world_b = worlds

    # When the technician POSTs each copy
    outcome = _post_copies(client, tech_a, world_b, client_b)

    # Then each is refused and B gains nothing
    assert CORE_CREATE_ROUTES <= set(outcome)
    accepted = [f"{label}: {status} {payload}" for label, (status, gained, payload)
                in outcome.items() if 200 <= status < 300 or gained]
    assert not accepted, "writes into client B accepted:\n" + "\n".join(accepted)


def test_the_same_copies_are_valid_for_an_admin(client, admin_user, worlds, client_b):
    # Given an admin, who sees every client: the copies are valid requests, so the refusals
    # above come from tenant scoping and not from a malformed payload
    _, world_b = worlds

    outcome = _post_copies(client, admin_user, world_b, client_b)

    for label in CORE_CREATE_ROUTES:
        assert outcome[label][0] == 201, (label, outcome[label])


def _id_filters(route):
    """(filter name, related model) of every id filter of an API list route."""
    from watchkeeper.core.api.filters import FilterBackend, IdFilter

    klass = getattr(route.callback, "cls", None)
    queryset = getattr(klass, "queryset", None) if klass else None
    if queryset is None or route.params:
        return []
    view = klass()
    filterset = FilterBackend().get_filterset_class(view, queryset)
    if filterset is None:
        return []
    found = []
    for name, flt in filterset.base_filters.items():
        if not isinstance(flt, IdFilter):
            continue
        model = queryset.model
        field = None
        for part in flt.field_name.split("__"):
            try:
                field = model._meta.get_field(part)
            except Exception:  # noqa: BLE001 - not a model path: nothing to compare
                field = None
                break
            model = field.related_model or model
        if field is not None:
            found.append((name, field.related_model or queryset.model))
    return found


@pytest.mark.parametrize("persona", ["tech_a", "portal_a"])
def test_id_filters_cannot_tell_another_tenants_id_from_a_missing_one(request, client, persona,
                                                                     worlds, client_b):
    # Given users of client A and one object of every tenant-owned model in B
    user = request.getfixturevalue(persona)
    _, world_b = worlds
    world_b = {**world_b, type(client_b): client_b}
    client.raise_request_exception = False
    oracles, walked = [], 0

    # When they filter every API list by B's object and by an id that does not exist
    for route in walk():
        for name, model in _id_filters(route):
            target = world_b.get(model)
            if target is None or not isinstance(target.pk, int):
                continue
            missing = model._default_manager.order_by("-pk").values_list("pk", flat=True)
            missing = (missing.first() or 0) + 1000
            answers = []
            for value in (target.pk, missing):
                sign_in(client, user)
                response = client.get(f"{route.url()}?{name}={value}")
                echo = re.compile(rf"(?<![\w/.]){value}(?![\w.])")
                answers.append((response.status_code,
                                echo.sub("<id>", response.content.decode())))
            if answers[0][0] == 405:
                continue  # a POST-only route (bulk actions): its filters are in the body
            walked += 1
            # Then status and body are the same
            if answers[0] != answers[1]:
                oracles.append(f"{route.label}?{name}=: {answers[0][0]} vs {answers[1][0]}")

    assert walked >= 40, walked  # the walk reached the id filters of the API
    assert not oracles, f"{persona}: filters tell B's ids from missing ones:\n" + \
        "\n".join(oracles)


@pytest.mark.parametrize("path, body", [
    ("/api/v1/enrollment-tokens/", {"site": "{site}", "hours": 1}),
    ("/api/v1/tickets/", {"subject": "x", "client": "{client}"}),
    ("/api/v1/devices/", {"name": "x", "client": "{client}"}),
])
def test_body_references_cannot_tell_another_tenants_id_from_a_missing_one(
        client, tech_a, client_a, client_b, path, body):
    # Given B's site and a site id that does not exist
    site_b = actions.create_site(actor=None, client=client_b, name=f"{MARKER} Depot")
    ids = {"B": {"site": site_b.pk, "client": client_b.pk},
           "missing": {"site": site_b.pk + 1000, "client": client_b.pk + 1000}}
    answers = []
    for which in ("B", "missing"):
        sign_in(client, tech_a)
        payload = {k: (ids[which][v[1:-1]] if isinstance(v, str) and v.startswith("{") else v)
                   for k, v in body.items()}
        response = client.post(path, payload, content_type="application/json")
        text = response.content.decode()
        for value in ids[which].values():
            text = re.sub(rf"(?<![\w/.]){value}(?![\w.])", "<id>", text)
        answers.append((response.status_code, text))
    # Then both are refused with the same status and body
    assert answers[0] == answers[1]
    assert answers[0][0] in (400, 403, 404)
