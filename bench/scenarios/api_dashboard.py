"""api_dashboard: the two reads a busy MSP hits most — the client list of the REST API (a
script or PSA sync paging through clients with a token) and the dashboard page (a technician's
browser with a signed-in session) — on 100 clients with sites and contacts."""

from __future__ import annotations

import json

from bench.harness import BenchError, Scenario, Target

CLIENTS = 100
SITES_PER_CLIENT = 2
CONTACTS_PER_CLIENT = 3
PAGE = 50
OWNER_EMAIL = "bench-owner@msp.test"
OWNER_PASSWORD = "bench owner passphrase 2026"


def _seed_owner():
    """An owner with MFA enrolled and the forced password change done, through the account
    actions as the CLI and web UI would."""
    import pyotp

    from watchkeeper.core import accounts
    from watchkeeper.core.choices import Role

    owner, _ = accounts.create_user(actor=None, email=OWNER_EMAIL, role=Role.OWNER,
                                    name="Bench Owner")
    accounts.change_password(actor=owner, user=owner, old_password=None,
                             new_password=OWNER_PASSWORD)
    secret = accounts.new_totp_secret()
    accounts.enable_mfa(actor=owner, user=owner, secret=secret,
                        code=pyotp.TOTP(secret).now())
    owner.refresh_from_db()
    return owner


def _session_cookie(owner) -> tuple[str, str]:
    """A session as the login view leaves it after the MFA step: Django's session machinery
    through accounts.sign_in, so the cookie is exactly what a browser would hold."""
    from importlib import import_module

    from django.conf import settings
    from django.http import HttpRequest

    from watchkeeper.core import accounts

    request = HttpRequest()
    request.META.update({"REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "127.0.0.1",
                         "SERVER_PORT": "80"})
    request.client_ip = "127.0.0.1"
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    accounts.sign_in(request, owner, mfa_verified=True, method="bench")
    request.session.save()
    return settings.SESSION_COOKIE_NAME, request.session.session_key


def _seed_tenants(actor) -> None:
    from watchkeeper.core import actions

    for i in range(1, CLIENTS + 1):
        client = actions.create_client(actor=actor, name=f"Client {i:03d} Ltd",
                                       notes=f"Benchmark tenant {i}")
        sites = [actions.create_site(actor=actor, client=client, name=f"Site {n}",
                                     address=f"{n} Harbour Road, Port {i}")
                 for n in range(1, SITES_PER_CLIENT + 1)]
        for n in range(1, CONTACTS_PER_CLIENT + 1):
            actions.create_contact(actor=actor, client=client, name=f"Contact {i}-{n}",
                                   email=f"contact{n}@client{i:03d}.test",
                                   phone=f"+44 20 7946 {i:02d}{n:02d}",
                                   site=sites[(n - 1) % len(sites)], is_primary=n == 1)


def _check_client_page(status: int, body: bytes) -> None:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BenchError(f"/api/v1/clients/ did not answer JSON: {body[:200]!r}") from exc
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != PAGE:
        raise BenchError(f"/api/v1/clients/ should return a page of {PAGE} clients, got "
                         f"{len(results) if isinstance(results, list) else results!r}")
    if data.get("count") != CLIENTS:
        raise BenchError(f"/api/v1/clients/ count is {data.get('count')}, seeded {CLIENTS}")


def _check_dashboard(status: int, body: bytes) -> None:
    # The page must be the signed-in dashboard, not a login or MFA form answered with 200.
    text = body.decode(errors="replace")
    if "Bench Owner" not in text and OWNER_EMAIL not in text:
        raise BenchError("GET / did not render for the signed-in owner (name not on the page)")
    if 'name="password"' in text or 'name="code"' in text:
        raise BenchError("GET / answered a sign-in form instead of the dashboard")


class ApiDashboard(Scenario):
    name = "api_dashboard"
    description = (
        f"GET /api/v1/clients/ (API token, first page of {PAGE}) and the dashboard GET / "
        f"(signed-in session, MFA done) with {CLIENTS} clients, {SITES_PER_CLIENT} sites and "
        f"{CONTACTS_PER_CLIENT} contacts each, as an owner (sees every client)."
    )

    def seed(self) -> dict:
        from watchkeeper.core import accounts
        from watchkeeper.core.choices import TokenScope

        owner = _seed_owner()
        _seed_tenants(owner)
        _, raw_token = accounts.create_token(actor=owner, user=owner, name="benchmark",
                                             scope=TokenScope.READ)
        cookie_name, session_key = _session_cookie(owner)
        return {"token": raw_token, "cookie_name": cookie_name, "session_key": session_key}

    def targets(self, seeded: dict) -> list[Target]:
        return [
            Target(f"GET /api/v1/clients/ (token, {PAGE} per page)", "/api/v1/clients/",
                   headers={"Authorization": f"Bearer {seeded['token']}",
                            "Accept": "application/json"},
                   validate=_check_client_page),
            Target("GET / dashboard (session)", "/",
                   headers={"Cookie": f"{seeded['cookie_name']}={seeded['session_key']}",
                            "Accept": "text/html"},
                   validate=_check_dashboard),
        ]


SCENARIO = ApiDashboard()
