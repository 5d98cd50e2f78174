"""The discovery document: only what this server really does, built from app/capabilities.py and validated."""

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc import rpinitiated
from authlib.oidc.discovery import OpenIDProviderMetadata

from app.capabilities import (
    ACR_VALUES,
    ASSERTION_ALGS,
    AUTH_METHODS,
    CLAIMS,
    CODE_CHALLENGE_METHODS,
    CONFIDENTIAL_AUTH_METHODS,
    GRANT_TYPES,
    PROMPT_VALUES,
    RESPONSE_MODES,
    RESPONSE_TYPES,
    SIGNING_ALGS,
    STANDARD_SCOPES,
    SUBJECT_TYPES,
)


def metadata(issuer: str) -> dict:
    """OpenID Provider / RFC 8414 metadata; both well-known paths serve this one document."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "scopes_supported": list(STANDARD_SCOPES),
        "response_types_supported": list(RESPONSE_TYPES),
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": list(SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": list(SIGNING_ALGS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "code_challenge_methods_supported": list(CODE_CHALLENGE_METHODS),
        "prompt_values_supported": list(PROMPT_VALUES),
        "claims_supported": list(CLAIMS),
        "acr_values_supported": list(ACR_VALUES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


def validated_metadata(issuer: str) -> dict:
    """The document, checked against OpenID Connect Discovery and RFC 8414; raises ValueError if broken."""
    document = metadata(issuer)
    OpenIDProviderMetadata(document).validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    AuthorizationServerMetadata(document).validate()
    return document
