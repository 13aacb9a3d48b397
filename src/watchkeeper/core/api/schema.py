"""OpenAPI extensions: document the personal API token as a bearer scheme."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
