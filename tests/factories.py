"""Factories for tests and the demo: build through actions where an action exists."""

from __future__ import annotations

import pyotp
from django.utils import timezone

from watchkeeper.core import crypto
from watchkeeper.core.models import Client, User

PASSWORD = "correct horse battery staple"


def make_client(name: str, **fields) -> Client:
    from django.utils.text import slugify

    return Client.objects.create(name=name, slug=slugify(name), **fields)


def make_user(email: str, role: str, *, mfa: bool = True, password: str = PASSWORD,
              **fields) -> User:
    user = User.objects.create_user(email, password, role=role, **fields)
    if mfa:
        user.totp_secret_enc = crypto.encrypt(pyotp.random_base32(), "totp")
        user.mfa_enabled_at = timezone.now()
        user.save(update_fields=["totp_secret_enc", "mfa_enabled_at"])
    return user
