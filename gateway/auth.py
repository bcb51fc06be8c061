"""API keys: made and revoked (:class:`ApiKeys`, the CLI's), and checked on each request (:class:`Authenticator`).

Keys map to tenants and are stored hashed (SHA-256) in Redis; the key itself is
shown once, at creation. A key is ``ck_`` + 32 random bytes (URL-safe base64):
high entropy, so a plain SHA-256 is the right hash (a slow password hash buys
nothing for random keys and would cost every request). Lookups compare digests,
never the keys.

A request presents its key as ``Authorization: Bearer <key>``, or as
``?api_key=`` only where a browser cannot set headers (:func:`query_key_allowed`:
the WebSocket upgrade, GET of a request's audio or events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

import redis
import redis.asyncio as aredis
from starlette.requests import HTTPConnection

from chorus_client.keys import Keys, validate_tenant
from gateway.http import HttpError
from shared.connection import as_str
from shared.errors import InvalidRequest

__all__ = ["KEY_PREFIX", "ApiKey", "ApiKeys", "Authenticator", "bearer_matches", "key_digest", "query_key_allowed"]

KEY_PREFIX = "ck_"
MAX_KEY_CHARS = 128
"""Longer keys are refused without a Redis read (a real key has 46 characters)."""
MIN_KEY_ID_DIGITS = 6
"""Digits of a key id that ``chorus keys revoke`` needs at least."""
AUTH_CACHE_S = 1.0
"""How long a key's lookup (its tenant, or that it is unknown) is reused."""
AUTH_CACHE_ENTRIES = 10_000


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    """First 12 hex digits of the key's SHA-256: enough to name it, useless to use it."""
    tenant: str
    name: str
    created: int


class ApiKeys:
    """The keyring in Redis, for the CLI (``chorus keys``): add, list, revoke."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    def add(self, tenant: str, name: str = "") -> tuple[str, ApiKey]:
        """A new key for ``tenant``: (the key, to show once; its record)."""
        validate_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = key_digest(key)
        record = ApiKey(digest[:12], tenant, name, int(time.time()))
        self._r.hset(self.keys.api_keys(), digest, json.dumps(record.__dict__))
        return key, record

    def all(self) -> list[ApiKey]:
        out = [ApiKey(**json.loads(v)) for v in self._r.hgetall(self.keys.api_keys()).values()]
        return sorted(out, key=lambda k: (k.tenant, k.created))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key whose id (or a unique prefix of it, 6+ digits) is ``key_id``; InvalidRequest otherwise."""
        if len(key_id) < MIN_KEY_ID_DIGITS:
            raise InvalidRequest("key_id", f"give at least {MIN_KEY_ID_DIGITS} digits (see `chorus keys list`)")
        matches = [as_str(d) for d in self._r.hkeys(self.keys.api_keys()) if as_str(d).startswith(key_id)]
        if len(matches) != 1:
            raise InvalidRequest("key_id", f"{len(matches)} keys match {key_id!r}; give more digits")
        raw = self._r.hget(self.keys.api_keys(), matches[0])
        self._r.hdel(self.keys.api_keys(), matches[0])
        return ApiKey(**json.loads(raw or "{}"))


_QUERY_KEY_PATH = re.compile(r"^/v1/requests/[^/]+/(?:audio|events)$")


def query_key_allowed(conn: HTTPConnection) -> bool:
    """Whether ``?api_key=`` may stand for the header here: the WebSocket upgrade, and GET (or HEAD)
    of a request's audio or events, which ``<audio>`` elements, media players and EventSource open
    without headers. Never on POST, DELETE or the listing routes: a key in a URL ends up in proxy
    logs, browser history and Referer headers."""
    if conn.scope["type"] == "websocket":
        return True
    return conn.scope.get("method") in ("GET", "HEAD") and bool(_QUERY_KEY_PATH.match(conn.url.path))


def _bearer(conn: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without such a header."""
    header = conn.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def bearer_matches(conn: HTTPConnection, token: str) -> bool:
    """Whether the request's bearer token is ``token`` (compared in constant time)."""
    return hmac.compare_digest((_bearer(conn) or "").encode(), token.encode())


def _unauthorized(message: str) -> HttpError:
    return HttpError(401, message, "unauthorized", {"WWW-Authenticate": "Bearer"})


class Authenticator:
    """Tells which tenant a request is: the tenant of the API key it presents (401 without one).

    Lookups are cached per key digest for :data:`AUTH_CACHE_S`, unknown keys included: a
    flood of calls, valid keys or not, costs one Redis read per key per second, and a
    revocation takes effect within that second.
    """

    def __init__(self, client: aredis.Redis, keys: Keys, *, enabled: bool = True, open_tenant: str = "default") -> None:
        self._r = client
        self.keys = keys
        self.enabled = enabled
        """False: no API keys; every caller is ``open_tenant`` (local development only)."""
        self.open_tenant = open_tenant
        self._cache: dict[str, tuple[str | None, float]] = {}
        """Key digest -> (tenant or None for an unknown key, until when)."""

    async def tenant(self, conn: HTTPConnection) -> str:
        return (await self.authenticate(conn))[0]

    async def authenticate(self, conn: HTTPConnection) -> tuple[str, str | None]:
        """(tenant, digest of the API key; None without auth); 401 for a missing or unknown key, and
        for a key in the query string of a route that is not :func:`query_key_allowed`."""
        if not self.enabled:
            return self.open_tenant, None
        bearer = _bearer(conn)
        key = bearer
        if key is None and conn.query_params.get("api_key"):
            if not query_key_allowed(conn):
                raise _unauthorized(
                    "API keys in the query string are accepted only where a browser cannot send headers "
                    "(the WebSocket upgrade, GET of a request's audio or events): send Authorization: Bearer <key>"
                )
            key = conn.query_params["api_key"]
        if not key:
            raise _unauthorized("missing API key: send Authorization: Bearer <key>")
        digest = key_digest(key)
        tenant = await self._tenant_of(key, digest)
        if tenant is None:
            raise _unauthorized("invalid API key")
        return tenant, digest

    async def _tenant_of(self, key: str, digest: str) -> str | None:
        """The tenant ``key`` (whose digest is ``digest``) belongs to, or None for an unknown key."""
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        well_formed = key.startswith(KEY_PREFIX) and len(key) <= MAX_KEY_CHARS
        raw = await self._r.hget(self.keys.api_keys(), digest) if well_formed else None
        tenant = None if raw is None else str(json.loads(raw)["tenant"])
        if len(self._cache) >= AUTH_CACHE_ENTRIES:
            self._cache.clear()
        self._cache[digest] = (tenant, now + AUTH_CACHE_S)
        return tenant

    async def key_valid(self, digest: str | None) -> bool:
        """Whether an API key (by digest) still exists: open WebSockets re-check it (revocation)."""
        return digest is None or bool(await self._r.hexists(self.keys.api_keys(), digest))
