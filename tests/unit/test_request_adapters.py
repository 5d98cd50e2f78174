"""Our request adapters give Authlib what its stock Flask ones do, minus the full URL.

Authlib's grants and endpoints read the method, the headers, the URL (only to refuse plain HTTP
to a non-loopback host), the payload and its parameters, form, args, and the attributes the
grants set (client, user, scope...). For each request below both adapters must agree on all of it.
"""

import warnings
from urllib.parse import urlsplit

import pytest
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest, FlaskOAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError, MissingAuthorizationError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError
from flask import Flask, g, request

from app.oauth.requests import JsonRequest, OAuth2Request, Protector

REQUESTS = {
    "form POST with Basic auth": {
        "path": "/oauth2/token?ignored=1",
        "method": "POST",
        "data": {"grant_type": "client_credentials", "scope": "api read", "client_id": "web"},
        "headers": {"Authorization": "Basic d2ViOnNlY3JldA=="},
        "base_url": "https://auth.example.com",
    },
    "GET with query": {
        "path": "/oauth2/authorize?response_type=code&client_id=web&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"
        "&scope=openid+profile&state=xyz&scope=again",
        "method": "GET",
        "base_url": "https://auth.example.com:8443",
    },
    "JSON body": {
        "path": "/oauth2/userinfo",
        "method": "POST",
        "json": {"scope": "openid", "client_id": "web"},
        "headers": {"Authorization": "Bearer abc"},
        "base_url": "http://127.0.0.1:5000",
    },
    "repeated form parameter on loopback": {
        "path": "/oauth2/revoke",
        "method": "POST",
        "data": {"token": ["a", "b"], "token_type_hint": "access_token"},
        "base_url": "http://localhost:5000",
    },
}
PAYLOAD_FIELDS = ("client_id", "response_type", "grant_type", "redirect_uri", "scope", "state")
# Older spellings Authlib still reads in places, deprecated in favour of request.payload.
DEPRECATED_FIELDS = ("data", "datalist", "client_id", "response_type", "grant_type", "redirect_uri", "state")
SET_BY_GRANTS = ("client", "auth_method", "user", "authorization_code", "refresh_token", "credential", "scope")


@pytest.fixture(scope="module")
def flask_app():
    return Flask(__name__)


def _url(uri: str) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    return parts.scheme, parts.netloc, parts.path


def _multi(values) -> dict:
    return {k: values.getlist(k) for k in values}


def _same_request(ours, stock) -> None:
    assert ours.method == stock.method
    assert _url(ours.uri) == _url(stock.uri)
    assert list(ours.headers.items()) == list(stock.headers.items())
    assert bool(ours.headers) is bool(stock.headers) is True


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_oauth2_request_agrees_with_authlibs(flask_app, name):
    with flask_app.test_request_context(**REQUESTS[name]):
        ours, stock = OAuth2Request(request), FlaskOAuth2Request(request)
        _same_request(ours, stock)
        assert _multi(ours.payload.data) == _multi(stock.payload.data)
        assert dict(ours.payload.datalist) == dict(stock.payload.datalist)
        for field in PAYLOAD_FIELDS:
            assert getattr(ours.payload, field) == getattr(stock.payload, field), field
        assert _multi(ours.form) == _multi(stock.form)
        assert _multi(ours.args) == _multi(stock.args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for field in DEPRECATED_FIELDS:
                theirs = getattr(stock, field)
                mine = getattr(ours, field)
                assert (_multi(mine) if hasattr(mine, "getlist") else mine) == (
                    _multi(theirs) if hasattr(theirs, "getlist") else theirs
                ), field
        for field in SET_BY_GRANTS:
            assert getattr(ours, field) == getattr(stock, field), field
        ours.scope = stock.scope = "narrowed"
        assert ours.scope == stock.scope == "narrowed"


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_json_request_agrees_with_authlibs(flask_app, name):
    with flask_app.test_request_context(**REQUESTS[name]):
        ours, stock = JsonRequest(request), FlaskJsonRequest(request)
        _same_request(ours, stock)
        if request.is_json:
            assert ours.payload.data == stock.payload.data


@pytest.mark.parametrize("adapter", [OAuth2Request, FlaskOAuth2Request, JsonRequest, FlaskJsonRequest])
def test_plain_http_to_a_non_loopback_host_is_refused_by_both(flask_app, adapter):
    with flask_app.test_request_context("/oauth2/token", method="POST", base_url="http://auth.example.com"):
        if adapter in (JsonRequest, FlaskJsonRequest):
            # Authlib's JSON request does not check the transport itself; the URL must still say http.
            assert _url(adapter(request).uri) == ("http", "auth.example.com", "/oauth2/token")
        else:
            with pytest.raises(InsecureTransportError):
                adapter(request)


class Token(dict):
    def get_scope(self):
        return self["scope"]

    def is_expired(self):
        return False

    def is_revoked(self):
        return False


class Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return Token(value=token_string, scope="openid profile") if token_string != "unknown" else None


def _protectors():
    for protector in (Protector(), ResourceProtector()):
        protector.register_token_validator(Validator())
        yield protector


@pytest.mark.parametrize(
    ("headers", "scopes", "outcome"),
    [
        ({"Authorization": "Bearer good"}, "openid", Token(value="good", scope="openid profile")),
        ({"Authorization": "Bearer good"}, ["openid", "profile"], Token(value="good", scope="openid profile")),
        ({"Authorization": "Bearer good"}, "email", InsufficientScopeError),
        ({}, "openid", MissingAuthorizationError),
        ({"Authorization": "Bearer unknown"}, None, "invalid_token"),
    ],
)
def test_the_protector_acquires_tokens_as_authlibs_does(flask_app, headers, scopes, outcome):
    results = []
    for protector in _protectors():
        with flask_app.test_request_context("/oauth2/userinfo", headers=headers, base_url="https://auth.example.com"):
            try:
                token = protector.acquire_token(scopes)
                results.append((token, g.authlib_server_oauth2_token))
            except Exception as error:  # the error is the outcome compared
                results.append((type(error), getattr(error, "error", None)))
    assert results[0] == results[1]
    if isinstance(outcome, Token):
        assert results[0] == (outcome, outcome)
    elif isinstance(outcome, str):
        assert results[0][1] == outcome
    else:
        assert results[0][0] is outcome


# --- the memoised transport check (app/oauth/requests.py reaches into Authlib's module) ----------

TRANSPORT_URIS = [
    "https://auth.example.com/oauth2/token",
    "http://auth.example.com/oauth2/token",
    "http://localhost:5000/oauth2/token",
    "http://127.0.0.1:8000/oauth2/token",
    "http://127.9.9.9/oauth2/token",
    "http://[::1]:8000/oauth2/token",
    "http://[::ffff:127.0.0.1]/oauth2/token",
    "http://10.0.0.1/oauth2/token",
    "http:///oauth2/token",
    "ftp://127.0.0.1/x",
    "http://[::1/oauth2/token",
]


def test_authlibs_transport_check_reads_the_module_global_we_replace():
    """If an Authlib upgrade checks the transport elsewhere, the memo silently stops applying: fail here."""
    from authlib.oauth2.rfc6749 import errors

    assert "is_secure_transport" in errors.InsecureTransportError.check.__func__.__code__.co_names
    assert errors.InsecureTransportError.check.__func__.__globals__ is vars(errors)


@pytest.mark.parametrize("uri", TRANSPORT_URIS)
def test_the_memoised_transport_check_answers_as_authlibs(uri, monkeypatch):
    from authlib.common.security import is_secure_transport
    from authlib.oauth2.rfc6749 import errors

    from app.oauth.requests import _memoised_secure_transport, memoise_transport_check

    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
    monkeypatch.setattr(errors, "is_secure_transport", errors.is_secure_transport)
    memoise_transport_check()
    for _ in range(2):  # computed, then remembered
        assert _memoised_secure_transport(uri) is is_secure_transport(uri)
        if is_secure_transport(uri):
            errors.InsecureTransportError.check(uri)
        else:
            with pytest.raises(InsecureTransportError):
                errors.InsecureTransportError.check(uri)
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    assert _memoised_secure_transport(uri) is is_secure_transport(uri) is True
