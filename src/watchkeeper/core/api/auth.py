"""Bearer-token authentication for the REST API (personal API tokens)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from ..models import ApiToken

log = logging.getLogger(__name__)

TOKEN_PREFIX = "wk_"


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (no brute force is
    # feasible); a slow KDF here would cost every API request.
    return hashlib.sha256(raw.encode()).hexdigest()


def split_token(raw: str) -> tuple[str, str] | None:
    """wk_<prefix>_<secret> -> (prefix, raw)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    parts = raw.split("_")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    return parts[1], raw


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme not in (self.keyword, "Token"):
            return None
        parsed = split_token(raw.strip())
        if parsed is None:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        prefix, raw = parsed
        token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if token is None or not hmac.compare_digest(token.token_hash, hash_token(raw)):
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if not token.is_active:
            raise exceptions.AuthenticationFailed("API token expired or revoked.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive.")
        if token.role != token.user.role:
            raise exceptions.AuthenticationFailed(
                "The role of this token's owner changed; create a new token.")
        now = timezone.now()
        # Write last-used at most once a minute: a busy script must not turn reads into writes.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ip = getattr(request._request, "client_ip", None)
            try:
                # Best effort, in a savepoint: a full disk or a read-only replica must not
                # fail a read-only call because of this bookkeeping write.
                with transaction.atomic():
                    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now,
                                                                last_used_ip=ip)
            except DatabaseError as exc:
                log.warning("could not record the last use of token %s: %s", token.prefix,
                            type(exc).__name__)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword
