"""Every route of the project declares its permission, and anonymous requests to every
non-public route are refused: pages redirect to the login, the API answers 401/403."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.urls import URLResolver, include, path, reverse
from django.urls.resolvers import RegexPattern

from tests.tenancy_fixtures import walk
from watchkeeper.core.api.urls import SchemaView
from watchkeeper.core.permissions import CAPABILITIES, PUBLIC, requires

pytestmark = pytest.mark.django_db


def _undeclared(routes) -> list[str]:
    return [r.label for r in routes if r.permission is None]


def _unknown_capabilities(routes) -> list[str]:
    bad = []
    for route in routes:
        decl = route.permission
        caps = decl.values() if isinstance(decl, dict) else [decl]
        bad += [f"{route.label}: {c}" for c in caps
                if c is not None and c not in CAPABILITIES and c not in (PUBLIC,
                                                                        "authenticated")]
    return bad


def test_every_route_declares_a_known_permission():
    # Given every URL pattern of the project, through all includes
    routes = list(walk())

    # Then the walk found the project's routes, and each declares a known capability
    assert len(routes) > 20
    assert {"site-list", "site-detail", "api-schema"} <= {r.name for r in routes}
    assert not _undeclared(routes), f"routes without a permission: {_undeclared(routes)}"
    assert not _unknown_capabilities(routes)


def test_the_walk_catches_an_undeclared_route_inside_an_include():
    # Given a URLconf with an undeclared view nested in an include, next to declared ones
    def forgotten(request):
        return HttpResponse("oops")

    @requires("clients.view")
    def declared(request):
        return HttpResponse("ok")

    nested = [path("inner/<int:pk>/", forgotten, name="forgotten")]
    conf = URLResolver(RegexPattern(r"^/"), [
        path("ok/", declared, name="declared"),
        path("schema", SchemaView.as_view(), name="schema"),
        path("outer/", include((nested, "app"), namespace="app")),
    ])

    # When it is walked
    routes = list(walk(conf, prefix=""))

    # Then the nested route is found with its full path and namespaced name, and flagged
    assert [r.template for r in routes] == ["ok/", "schema", "outer/inner/%(pk)s/"]
    assert _undeclared(routes) == ["app:forgotten"]


def test_the_middleware_refuses_an_undeclared_route(client, owner, settings):
    # Given a URLconf whose only route declares nothing, and a signed-in owner
    settings.ROOT_URLCONF = "tests.test_routes"
    from tests.conftest import sign_in

    sign_in(client, owner)

    # When the owner requests it
    response = client.get("/undeclared/")

    # Then the request is refused before the view runs
    assert response.status_code == 403


def _undeclared_view(request):
    return HttpResponse("reached")


urlpatterns = [path("undeclared/", _undeclared_view)]


def test_anonymous_requests_to_non_public_routes_are_refused(client):
    # Given no signed-in user
    login = reverse(settings.LOGIN_URL)
    allowed, checked = [], 0
    client.raise_request_exception = False

    # When every non-public route is requested, parameters filled with plausible values
    for route in walk():
        url = route.url(**route.sample_kwargs())
        for method in ("GET", "POST"):
            if route.is_public(method):
                continue
            response = client.generic(method, url)
            checked += 1
            if route.is_api:
                undeclared = isinstance(route.permission, dict) and method not in \
                    route.permission
                ok = response.status_code in (401, 403) or (
                    undeclared and response.status_code == 405)
            else:
                ok = response.status_code == 302 and response["Location"].startswith(login)
            if not ok:
                allowed.append(f"{method} {route.label} {url}: {response.status_code}")

    # Then the API answers 401/403 (405 for a method the route does not offer at all) and
    # pages redirect to the login
    assert checked > 20
    assert not allowed, "anonymous requests not refused:\n" + "\n".join(allowed)


def test_anonymous_api_requests_get_a_401_problem_with_a_bearer_challenge(client):
    response = client.get("/api/v1/clients/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Not authenticated"


def test_every_integer_path_parameter_is_a_64_bit_id():
    """Class closed: routes take ids through `<id:…>` (core/converters.py), never `<int:…>`
    (unbounded: a 20-digit id reached the database) nor a regex group."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.converters import IntConverter
    from django.urls.resolvers import RegexPattern

    offenders = []

    def visit(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p.pattern, RegexPattern) and "(?P<" in str(p.pattern):
                offenders.append(route)
            converters = getattr(p.pattern, "converters", {})
            if any(isinstance(c, IntConverter) for c in converters.values()):
                offenders.append(route)
            if isinstance(p, URLResolver):
                visit(p.url_patterns, route)
            elif not isinstance(p, URLPattern):
                raise AssertionError(p)

    visit(get_resolver().url_patterns)
    assert offenders == []
