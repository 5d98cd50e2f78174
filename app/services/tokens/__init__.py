"""Tokens: authorization codes, refresh-token families, access tokens, the deny-list, and what tokens say.

Every function here works in the caller's transaction: lookups only read, writes are added to
the session, and the endpoint (or the service write around it) commits once. Replays and reuse
are not handled behind the caller's back: the grant that finds a used code or a rotated refresh
token calls `revoke_replayed` or `report_reuse` itself.

    claims     signing; the user's claims; RFC 9068 access-token claims; ID tokens
    codes      authorization codes: store, find, consume, revoke what a replayed code issued
    refresh    refresh-token families: find, rotate, report reuse, revoke a family
    access     issue JWT or opaque access tokens; read any token of ours back; revoke
    denylist   revoked JWT ids, insert-or-ignore
    purge      delete what has expired
"""

from app.services.tokens.access import (
    ACCESS_TOKEN_PREFIX,
    LEEWAY,
    TokenInfo,
    decode_access_jwt,
    generate,
    inspect,
    looks_like_jwt,
    revoke,
    save,
)
from app.services.tokens.claims import SignIn, id_token, sign_in_of, user_claims
from app.services.tokens.codes import (
    CODE_LIFETIME,
    CODE_PREFIX,
    consume_code,
    find_code,
    is_expired,
    new_code,
    reread,
    revoke_replayed,
    store_code,
)
from app.services.tokens.denylist import deny, is_denied
from app.services.tokens.purge import purge_expired
from app.services.tokens.refresh import (
    REFRESH_TOKEN_PREFIX,
    find_refresh_token,
    is_rotated,
    is_session_bound,
    report_reuse,
    revoke_family,
    rotate_refresh_token,
)

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "CODE_LIFETIME",
    "CODE_PREFIX",
    "LEEWAY",
    "REFRESH_TOKEN_PREFIX",
    "SignIn",
    "TokenInfo",
    "consume_code",
    "decode_access_jwt",
    "deny",
    "find_code",
    "find_refresh_token",
    "generate",
    "id_token",
    "inspect",
    "is_denied",
    "is_expired",
    "is_rotated",
    "is_session_bound",
    "looks_like_jwt",
    "new_code",
    "purge_expired",
    "report_reuse",
    "reread",
    "revoke",
    "revoke_family",
    "revoke_replayed",
    "rotate_refresh_token",
    "save",
    "sign_in_of",
    "store_code",
    "user_claims",
]
