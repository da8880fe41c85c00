"""``Authorization: Bearer rdm_…``: an API token, acting as its owner narrowed by its scopes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from rdm_site.tokens import TOKEN_PREFIX, token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Pipelines and tools authenticate with a token; the browser keeps its session (and CSRF)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw.startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(f"The bearer token must be an RDM API token ({TOKEN_PREFIX}…).")
        actor = token_authenticate(raw, address=request.META.get("REMOTE_ADDR"))
        if actor is None:
            raise exceptions.AuthenticationFailed("The API token is unknown, revoked or expired.")
        return actor, actor.token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An RDM API token (`rdm_…`), made by its owner; it acts with the owner's roles "
            "narrowed by its scopes.",
        }
