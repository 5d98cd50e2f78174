"""The protocol's machine endpoints: token, userinfo, introspection, revocation, JWKS, discovery. JSON only."""

import json

from flask import Response, current_app, request

from app.extensions import authorization, csrf
from app.oauth import bp
from app.oauth.discovery import metadata
from app.oauth.params import malformed
from app.runtime import runtime
from app.services import committed
from app.services.keys import keyring


def _malformed_parameters():
    """Refuse a repeated body parameter (RFC 6749 3.2) or a NUL in any parameter, before Authlib reads them."""
    error = malformed(request.values, once=request.form)
    return None if error is None else authorization.handle_error_response(None, error)


@bp.post("/oauth2/token")
@csrf.exempt
@committed
def token():
    if (refused := _malformed_parameters()) is not None:
        return refused
    return authorization.create_token_response()


@bp.route("/oauth2/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    if "Authorization" not in request.headers:
        # RFC 6750 3.1: no credentials at all gets the challenge without an error code.
        return Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="userinfo"'})
    return authorization.create_endpoint_response("userinfo")


@bp.post("/oauth2/introspect")
@csrf.exempt
@committed
def introspect():
    if (refused := _malformed_parameters()) is not None:
        return refused
    return authorization.create_endpoint_response("introspection")


@bp.post("/oauth2/revoke")
@csrf.exempt
@committed
def revoke():
    if (refused := _malformed_parameters()) is not None:
        return refused
    return authorization.create_endpoint_response("revocation")


def _document(body: bytes, cache_control: str, stamp=None) -> Response:
    runtime().published.publish(request.path, body, cache_control, stamp)
    return Response(body, mimetype="application/json", headers={"Cache-Control": cache_control})


@bp.get("/oauth2/jwks")
def jwks():
    ring = keyring()
    published = ring.published()
    kids = tuple(k.kid for k in published)
    documents = runtime().documents
    body = documents.get(("jwks", kids))
    if body is None:
        documents.pop(documents.get("jwks_kids"), None)
        documents["jwks_kids"] = ("jwks", kids)
        body = documents[("jwks", kids)] = json.dumps({"keys": [k.public_jwk for k in published]}).encode()
    max_age = current_app.config["AUTHGATE_JWKS_MAX_AGE"]
    return _document(body, f"public, max-age={max_age}", stamp=lambda: ring.generation)


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    # Validated at start-up (app/oauth/server.py); built once per issuer.
    issuer = current_app.config["AUTHGATE_ISSUER"]
    documents = runtime().documents
    body = documents.get(("discovery", issuer))
    if body is None:
        body = documents[("discovery", issuer)] = json.dumps(metadata(issuer)).encode()
    return _document(body, "public, max-age=3600")
