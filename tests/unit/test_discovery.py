"""The discovery document is checked against OpenID Connect Discovery and RFC 8414 when the app starts."""

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc import rpinitiated
from authlib.oidc.discovery import OpenIDProviderMetadata

from tests.conftest import make_app


def test_the_served_document_is_valid_metadata(app):
    response = app.test_client().get("/.well-known/openid-configuration")
    document = response.get_json()
    OpenIDProviderMetadata(document).validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    AuthorizationServerMetadata(document).validate()


def test_an_invalid_document_stops_the_start(tmp_path, monkeypatch):
    # OAuth 2 needs https except on loopback hosts, so this issuer cannot publish valid metadata.
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
    with pytest.raises(RuntimeError, match=r"discovery document is invalid.*https"):
        make_app(f"sqlite:///{tmp_path}/authgate.db", AUTHGATE_ISSUER="http://auth.example.com")
