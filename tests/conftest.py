"""Shared personas: an owner, an admin, a technician of client A, a client user of client B.

Tests run on SQLite by default and on PostgreSQL when WATCHKEEPER_DATABASE_URL points there
(.ci/run does both).
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("WATCHKEEPER_DATA_DIR", tempfile.mkdtemp(prefix="wk-test-"))
os.environ.setdefault("WATCHKEEPER_TESTING", "1")

import pyotp  # noqa: E402
import pytest  # noqa: E402

from tests.factories import make_client, make_user  # noqa: E402
from watchkeeper.core.auth import SESSION_AUTH_AT, SESSION_MFA_VERIFIED  # noqa: E402
from watchkeeper.core.choices import Role  # noqa: E402

# What the tests probe: loopback peers (snmpd, HTTP, TLS and DNS servers on 127.0.0.1), the
# private 10/8 of discovery forms and the documentation ranges nothing answers from. The
# allow-list an admin would set (core/netguard.py refuses anything not allowed).
LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.0.2.0/24",
                     "198.51.100.0/24", "203.0.113.0/24"]


@pytest.fixture
def client_a(db):
    return make_client("Acme Dental", probe_networks=LOOPBACK_NETWORKS)


@pytest.fixture
def client_b(db):
    return make_client("Borealis Logistics", probe_networks=LOOPBACK_NETWORKS)


@pytest.fixture
def msp_probes(db):
    """Checks with no client (drafts, "Test now" without a device) may reach the same."""
    from watchkeeper.core.models import SecurityPolicy

    SecurityPolicy.objects.update_or_create(pk=1, defaults={"probe_networks":
                                                            LOOPBACK_NETWORKS})


@pytest.fixture
def loopback_probes():
    """Probes run directly (not through a client's check) may reach loopback peers."""
    from watchkeeper.core import netguard

    with netguard.allow(LOOPBACK_NETWORKS):
        yield


@pytest.fixture
def owner(db):
    return make_user("owner@msp.test", Role.OWNER)


@pytest.fixture
def admin_user(db):
    return make_user("admin@msp.test", Role.ADMIN)


@pytest.fixture
def tech_a(db, client_a):
    user = make_user("tech@msp.test", Role.TECHNICIAN)
    user.assigned_clients.add(client_a)
    return user


@pytest.fixture
def portal_b(db, client_b):
    return make_user("jo@borealis.test", Role.CLIENT_USER, client=client_b)


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL pass runs what depends on the database engine.

    Browser tests (the UI over the same views the API and page tests cover on both engines)
    and tests marked `engine_agnostic` (they start their own SQLite platform, or test files
    and packages) run in the SQLite pass only, unless WATCHKEEPER_TEST_ALL_ENGINES=1.
    """
    url = os.environ.get("WATCHKEEPER_DATABASE_URL", "")
    if not url.startswith("postgres") or os.environ.get("WATCHKEEPER_TEST_ALL_ENGINES") == "1":
        return
    skip = pytest.mark.skip(reason="engine-agnostic: runs in the SQLite pass only")
    for item in items:
        if item.get_closest_marker("engine_agnostic") or item.nodeid.startswith("tests/browser/"):
            item.add_marker(skip)


def sign_in(django_client, user):
    """Log in as `user` with the MFA step done, as a real browser session would be."""
    django_client.force_login(user)
    session = django_client.session
    session[SESSION_MFA_VERIFIED] = True
    session[SESSION_AUTH_AT] = int(time.time())  # just signed in: counts as recent
    session.save()
    return django_client


@pytest.fixture
def as_user(client):
    def _as(user):
        return sign_in(client, user)

    return _as


def totp_now(user) -> str:
    from watchkeeper.core import crypto

    return pyotp.TOTP(crypto.decrypt(user.totp_secret_enc, "totp")).now()
