"""The one place that decides which tenants' rows a user may see.

Views, API viewsets, selectors and search all call `scoped(queryset, user)`. A model opts in
by declaring `tenant_path` (the lookup to its Client). Rows of another tenant are simply
absent from the queryset, so a request for one is a 404, never a 403 that confirms it exists.
"""

from __future__ import annotations

from django.db.models import Model, Q, QuerySet

from .choices import Role
from .permissions import GLOBAL_ROLES


def tenant_path(model: type[Model]) -> str:
    path = getattr(model, "tenant_path", None)
    if path is None:
        raise TypeError(f"{model.__name__} declares no tenant_path; it cannot be scoped")
    return path


def visible_client_ids(user) -> list[int] | None:
    """None means every client; otherwise the ids this user may see."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    if user.role in GLOBAL_ROLES:
        return None
    if user.role == Role.CLIENT_USER:
        return [user.client_id] if user.client_id else []
    cached = getattr(user, "_wk_client_ids", None)
    if cached is None:
        cached = list(user.assigned_clients.values_list("id", flat=True))
        user._wk_client_ids = cached
    return cached


def scoped(queryset: QuerySet, user, *, include_global: bool = True) -> QuerySet:
    """Narrow `queryset` to the tenants `user` may see.

    Rows with no client (MSP-wide objects such as a global webhook) are visible only to
    roles that see every client, and only when `include_global` is set.
    """
    path = tenant_path(queryset.model)
    ids = visible_client_ids(user)
    if ids is None:
        if include_global or path == "id":
            return queryset
        return queryset.filter(**{f"{path}__isnull": False})
    if path == "id":
        return queryset.filter(id__in=ids)
    return queryset.filter(Q(**{f"{path}__in": ids}))


def can_see_client(user, client_id: int | None) -> bool:
    ids = visible_client_ids(user)
    if client_id is None:
        return ids is None
    return ids is None or client_id in ids
