"""Serve the public documents (discovery, JWKS) from memory, without entering Flask.

They are the same bytes for every caller, fetched far more often than they change. The Flask
views build them and leave a copy here; for one second after that, a GET for the same path is
answered straight from the copy, unless the copy's `stamp` (for the JWKS: the key ring's
generation) has changed meanwhile, as it does the moment this process rotates a key.
"""

import time

FRESH_FOR = 1.0


class PublishedDocuments:
    """WSGI middleware in front of the app."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self._documents: dict[str, tuple] = {}

    def publish(self, path: str, body: bytes, cache_control: str, stamp=None) -> None:
        """Keep a copy of a document; `stamp` is a callable whose value changes when the copy is stale."""
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", cache_control),
            ("X-Content-Type-Options", "nosniff"),
        ]
        self._documents[path] = (time.monotonic() + FRESH_FOR, body, headers, stamp, stamp() if stamp else None)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            document = self._documents.get(environ.get("PATH_INFO", ""))
            if (
                document is not None
                and document[0] > time.monotonic()
                and (document[3] is None or document[3]() == document[4])
            ):
                start_response("200 OK", list(document[2]))
                return [document[1]]
        return self.wsgi_app(environ, start_response)
