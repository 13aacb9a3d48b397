"""Schemathesis hooks for `.ci/api-fuzz` (loaded with SCHEMATHESIS_HOOKS=tests.fuzz.st_hooks).

The fuzzer acts as an owner through a write token minted here, in its own process, against the
same database as the server under test. When a generated request takes that token away (it
revokes the token, resets or demotes its owner, changes its password), the next 401 makes
Schemathesis ask for a new one: the owner is put back as it was and a fresh token is minted,
so one lucky request does not turn the rest of the run into 401s.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "watchkeeper.settings")
django.setup()

import schemathesis  # noqa: E402

from watchkeeper.core import accounts  # noqa: E402
from watchkeeper.core.choices import Role, TokenScope  # noqa: E402
from watchkeeper.core.models import User  # noqa: E402

FUZZ_USER = os.environ.get("WK_FUZZ_USER", "fuzz-owner@watchkeeper.test")


@schemathesis.auth(refresh_interval=600)
class OwnerToken:
    def get(self, case, ctx):
        user = User.objects.get(email=FUZZ_USER)
        if user.role != Role.OWNER or not user.is_active:
            User.objects.filter(pk=user.pk).update(role=Role.OWNER, is_active=True,
                                                   client=None)
            user.refresh_from_db()
        _token, raw = accounts.create_token(actor="ci:api-fuzz", user=user, name="api-fuzz",
                                            scope=TokenScope.WRITE)
        return raw

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
