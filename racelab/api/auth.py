"""The ``X-Ingestion-Key`` check of every route but the public ones (ops endpoints, the API's documentation and,
when it is served, the status page's shell).

The check runs as the first thing a request meets (an ASGI middleware, before routing and before the body is read),
so a request without the right key gets 401 and nothing else happens: no collection, no read. It protects by
default: any path not listed in :data:`PUBLIC_PATHS` needs the key, so a new route cannot be left open by mistake.
The comparison is constant-time (:func:`hmac.compare_digest`). An empty configured key matches nothing, and
``racelab run api`` refuses to start without one. The key is never logged or put into an answer.
"""

from __future__ import annotations

import hmac
import logging

from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.settings import ApiSettings
from schemas.errors import ConfigurationError

log = logging.getLogger(__name__)
KEY_HEADER = "X-Ingestion-Key"
PUBLIC_PATHS = frozenset(
    {"/metrics", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
# The status page's shell holds no data (every number it shows comes from a keyed route): public when it is served
# (setting api.page_enabled); otherwise ``/`` is an unknown path like any other (401 without the key, 404 with it).
PAGE_PATH = "/"
MIN_KEY_LENGTH = 16

# Declares the header in the OpenAPI document; the enforcement is :class:`IngestionKeyGuard`.
key_header = APIKeyHeader(
    name=KEY_HEADER,
    scheme_name="IngestionKey",
    description="the ingestion API key (setting api.ingestion_key, RACELAB_API__INGESTION_KEY)",
    auto_error=False,
)


def key_matches(given: bytes | str | None, expected: SecretStr) -> bool:
    """Whether the header value is the configured key (constant time; an empty key never matches)."""
    secret = expected.get_secret_value()
    if not secret or given is None:
        return False
    raw = given.encode("utf-8") if isinstance(given, str) else given
    return hmac.compare_digest(raw, secret.encode("utf-8"))


def require_configured_key(settings: ApiSettings) -> None:
    """Refuse to serve without a key (:class:`ConfigurationError`); warn about a short one."""
    secret = settings.ingestion_key.get_secret_value()
    if not secret.strip():
        raise ConfigurationError(
            f"the control API needs an ingestion key: set RACELAB_API__INGESTION_KEY (callers send it as {KEY_HEADER})"
        )
    if len(secret) < MIN_KEY_LENGTH:
        log.warning("the ingestion key is shorter than %d characters; use a long random value", MIN_KEY_LENGTH)


class IngestionKeyGuard:
    """ASGI middleware: answers 401 to any request for a non-public path without the right ``X-Ingestion-Key``."""

    def __init__(
        self, app: ASGIApp, expected: SecretStr, reject: ASGIApp, public: frozenset[str] = PUBLIC_PATHS
    ) -> None:
        self.app = app
        self.expected = expected
        self.reject = reject
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.public:
            given = _header(scope, KEY_HEADER.lower().encode())
            if not key_matches(given, self.expected):
                await self.reject(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value)
    return None
