"""One error format for the whole API: RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

TITLES = {
    400: "Invalid request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict",
    415: "Unsupported media type", 429: "Too many requests",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


def problem(status_code: int, detail: str, *, errors=None, type_: str = "about:blank",
            instance: str | None = None) -> Response:
    body = {"type": type_, "title": TITLES.get(status_code, "Error"), "status": status_code,
            "detail": detail}
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=status_code, content_type="application/problem+json")


def flatten_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structures as one flat `{field: [message, ...]}` object, the shape
    the schema documents: nested fields joined with ".", list items by index
    (`parameters.0.name`), a bare message under `non_field_errors`."""
    out: dict[str, list[str]] = {}

    def add(key: str, message) -> None:
        out.setdefault(key or "non_field_errors", []).append(str(message))

    def walk(value, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list | tuple):
            if all(not isinstance(v, dict | list | tuple) for v in value):
                for v in value:
                    add(key, v)
            else:
                for i, v in enumerate(value):
                    if isinstance(v, dict | list | tuple):
                        walk(v, f"{key}.{i}" if key else str(i))
                    elif v not in (None, ""):
                        add(key, v)
        elif value not in (None, ""):
            add(key, value)

    walk(errors, prefix)
    return out


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "message_dict")
                                         else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, ProtectedError | RestrictedError):
        exc = Conflict("Other records still refer to this one; remove or move them first.")
    elif isinstance(exc, IntegrityError):
        exc = Conflict("The change conflicts with existing data (a duplicate, or a "
                       "concurrent change).")
    response = drf_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    instance = request.path if request is not None else None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(response.data)
        return problem(status.HTTP_400_BAD_REQUEST, "The request did not validate.",
                       errors=errors, instance=instance)
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    result = problem(response.status_code, str(detail or exc), instance=instance)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            result[header] = response[header]
    return result
