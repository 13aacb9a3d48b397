from __future__ import annotations

from .permissions import ROLE_CAPABILITIES


def shell(request) -> dict:
    user = getattr(request, "user", None)
    caps = ROLE_CAPABILITIES.get(getattr(user, "role", None), frozenset()) if user else frozenset()
    return {"caps": caps}
