"""Encryption of secrets at rest with the master key kept outside the database.

AES-256-GCM via `cryptography`; each value gets its own random nonce, and the ciphertext
is bound to a purpose string (associated data) so a value cannot be moved between fields.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

_VERSION = "v1"


def _key() -> bytes:
    return hashlib.sha256(("watchkeeper-master:" + settings.MASTER_KEY).encode()).digest()


def encrypt(plaintext: str, purpose: str) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(_key()).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + ct).decode()


def decrypt(token: str, purpose: str) -> str:
    version, _, body = token.partition(":")
    if version != _VERSION:
        raise ValueError("unknown ciphertext version")
    raw = base64.urlsafe_b64decode(body.encode())
    return AESGCM(_key()).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
