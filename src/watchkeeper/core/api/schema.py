"""OpenAPI extensions: the personal API token as a bearer scheme, and the problem+json
error responses of every operation."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from ..permissions import PUBLIC


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "watchkeeper.core.api.auth.TokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "wk_<prefix>_<secret>",
            "description": "A personal API token (Profile → API tokens), sent as "
                           "`Authorization: Bearer wk_<prefix>_<secret>`. Read-scoped tokens "
                           "may only use GET.",
        }


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the body of every API error."""

    type = serializers.CharField(help_text="A URI naming the problem type; about:blank.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False, help_text="The request path.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="400 only: messages per field, always a list of strings; nested fields "
                  "are joined with \".\" and list items by index (`parameters.0.name`); "
                  "`non_field_errors` for the whole body.",
    )


class ProblemAutoSchema(AutoSchema):
    """Documents the problem+json error responses each operation can give."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        ref = self.resolve_serializer(ProblemSerializer(), "response").ref

        def add(code: str, description: str) -> None:
            responses.setdefault(code, {
                "description": description,
                "content": {"application/problem+json": {"schema": ref}},
            })

        decl = getattr(self.view, "permissions", None)
        needed = decl.get(self.method) if isinstance(decl, dict) else None
        # Any request can be refused as unreadable (a bad parameter, too many form fields,
        # a malformed body): 400 is every operation's.
        add("400", "Invalid request: `errors` lists the messages per field.")
        if needed != PUBLIC:
            add("401", "No or invalid credentials.")
            add("403", "The role, or a read-only token, does not allow this.")
        if "{" in self.path:
            add("404", "No such object, or it belongs to a client you cannot see.")
        elif self.method == "GET" and self._is_list_view() and self._is_paginated():
            add("404", "A page past the last one (`page` out of range).")
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            add("409", "The change conflicts with the current state (a duplicate, a "
                       "concurrent change, other records that still refer to this one, or "
                       "a state that does not allow it).")
        return responses

    def _is_paginated(self) -> bool:
        return self._get_paginator() is not None

    def _get_paginator(self):
        # A detail action (`/tickets/{id}/attachments/`) answers a plain list unless the
        # viewset names it in `paginated_actions`; the collection's own list is paginated.
        if getattr(self.view, "detail", False) and getattr(self.view, "action", None) not in \
                getattr(self.view, "paginated_actions", ()):
            return None
        return super()._get_paginator()

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # An email field that may be blank ("" when unknown) is not format: email.
        if isinstance(schema, dict) and schema.get("format") == "email" and (
                field.read_only or getattr(field, "allow_blank", False)):
            schema.pop("format", None)
        return schema


def add_links(result, generator, request, public):
    """Postprocessing hook: read-only emails without `format`, and OpenAPI links from each
    create (POST on a collection, 201 with an `id`) to every operation on that collection's
    `{id}` paths, so a stateful client (and Schemathesis' stateful phase) can chain
    create -> read/update/act/delete."""
    # A read-only email ("" when unknown, e.g. a ticket's requester) is not format: email.
    for component in result.get("components", {}).get("schemas", {}).values():
        for prop in (component.get("properties") or {}).values():
            if prop.get("format") == "email" and prop.get("readOnly"):
                prop.pop("format")
    paths = result.get("paths", {})
    for path, item in paths.items():
        create = item.get("post")
        if not create or "{" in path:
            continue
        created = create.get("responses", {}).get("201")
        if not created:
            continue
        links = {}
        prefix = path + "{id}/"
        for other, other_item in paths.items():
            if not other.startswith(prefix) or other.count("{") != 1:
                continue
            for method, op in other_item.items():
                if method not in ("get", "put", "patch", "delete", "post"):
                    continue
                name = op["operationId"]
                links[name] = {"operationId": name,
                               "parameters": {"id": "$response.body#/id"}}
        if links:
            created["links"] = links
    return result
