"""Faults answered in the caller's language: JSON on machine endpoints, the error page on pages,
a request id on every response, one log line per failure and a traceback at most once a minute."""

import base64
import logging

import pytest
import sqlalchemy as sa

from app.errors import TracebackLimiter
from app.health import database_name
from app.services import client_cache, tokens
from tests.helpers import make_app


def _outage(*args, **kwargs):
    raise sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


def _bug(*args, **kwargs):
    raise RuntimeError("a bug")


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def machine_client(app, make_client):
    _, secret = make_client(client_id="reports", grant_types=["client_credentials"], redirect_uris=[])
    return app.test_client(), _basic("reports", secret)


def test_database_unavailable_at_the_token_endpoint_is_json_503(machine_client, monkeypatch):
    client, auth = machine_client
    monkeypatch.setattr(client_cache, "find_client", _outage)
    response = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=auth)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"] == "temporarily_unavailable"
    assert response.headers["X-Request-Id"]


def test_an_unexpected_error_at_a_machine_endpoint_is_json_500_with_the_request_id(machine_client, monkeypatch):
    client, auth = machine_client
    monkeypatch.setattr(tokens, "inspect", _bug)
    response = client.post("/oauth2/introspect", data={"token": "agat_x"}, headers={**auth, "X-Request-Id": "trace-42"})
    assert response.status_code == 500
    assert response.json["error"] == "server_error"
    assert "trace-42" in response.json["error_description"]
    assert response.headers["X-Request-Id"] == "trace-42"


def test_database_unavailable_on_a_page_is_the_html_error_page(app, monkeypatch):
    monkeypatch.setattr(client_cache, "find_client", _outage)
    response = app.test_client().get("/oauth2/authorize?client_id=web&response_type=code")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"] == "5"
    assert "AuthGate is briefly unavailable" in response.text
    assert "Internal Server Error" not in response.text


def test_an_unexpected_error_on_a_page_names_the_request_id(app, monkeypatch):
    monkeypatch.setattr(client_cache, "find_client", _bug)
    response = app.test_client().get("/oauth2/authorize?client_id=web", headers={"X-Request-Id": "page-7"})
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "Something went wrong" in response.text and "page-7" in response.text


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123", True), ("has spaces", False), ("x" * 65, False), ("<script>", False), (None, False)],
)
def test_every_response_carries_a_request_id(app, sent, kept):
    headers = {"X-Request-Id": sent} if sent is not None else {}
    for path in ("/healthz", "/oauth2/jwks", "/no-such-page"):
        request_id = app.test_client().get(path, headers=headers).headers["X-Request-Id"]
        assert (request_id == sent) is kept
        assert 1 <= len(request_id) <= 64 and " " not in request_id


def test_a_machine_path_gets_json_for_routing_errors_too(app):
    response = app.test_client().get("/oauth2/token")
    assert response.status_code == 405
    assert response.json["error"] == "invalid_request"


def test_one_line_per_failure_and_one_traceback_a_minute(machine_client, monkeypatch, caplog):
    client, auth = machine_client
    monkeypatch.setattr(client_cache, "find_client", _outage)
    caplog.set_level(logging.ERROR, logger="authgate.request")
    for _ in range(3):
        client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=auth)
    failures = [r for r in caplog.records if r.name == "authgate.request"]
    assert len(failures) == 3
    assert sum(1 for r in failures if r.exc_info) == 1
    assert all("-> 503 ConnectionRefusedError: connection refused" in r.getMessage() for r in failures)


def test_the_traceback_limiter_tells_faults_apart():
    limiter = TracebackLimiter(every=60)

    def fail(kind):
        try:
            raise kind("x")
        except kind as error:
            return error

    assert limiter.due(fail(ValueError)) and limiter.due(fail(KeyError))
    assert not limiter.due(fail(ValueError))


def test_readyz_answers_503_when_the_database_cannot_be_reached(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/authgate.db")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["status"] == "unavailable"
    assert response.json["checks"]["database"].startswith("OperationalError: unable to open database file")


def test_readyz_answers_200_when_the_database_answers(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok"}}


def test_the_cli_reports_an_unreachable_database_in_one_line(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/authgate.db", AUTHGATE_DB_WAIT_SECONDS=0)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: cannot reach the database sqlite:///{tmp_path}/missing/dir/authgate.db: ")
    assert "Traceback" not in result.output


def test_messages_name_the_database_without_its_password():
    app = make_app("postgresql://authgate:hunter2@127.0.0.1:1/authgate")
    with app.app_context():
        assert database_name() == "postgresql+psycopg://authgate@127.0.0.1:1/authgate"
