"""API keys mapped to tenants, stored hashed (SHA-256) in Redis; the key itself is shown once, at creation.

A key is ``ck_`` + 32 random bytes (URL-safe base64): high entropy, so a plain
SHA-256 is the right hash (a slow password hash buys nothing for random keys
and would cost every request). Lookups compare digests, never the keys.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

import redis

from shared.connection import as_str
from shared.errors import ChorusError
from shared.keys import Keys, validate_tenant

__all__ = ["KEY_PREFIX", "ApiKey", "ApiKeys"]

KEY_PREFIX = "ck_"


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

    def tenant_of(self, key: str) -> str | None:
        """The tenant a key belongs to, or None for an unknown key."""
        if not key.startswith(KEY_PREFIX) or len(key) > 128:
            return None
        raw = self._r.hget(self.keys.api_keys(), key_digest(key))
        return None if raw is None else str(json.loads(raw)["tenant"])

    def all(self) -> list[ApiKey]:
        out = [ApiKey(**json.loads(v)) for v in self._r.hgetall(self.keys.api_keys()).values()]
        return sorted(out, key=lambda k: (k.tenant, k.created))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key whose id (or a unique prefix of it, 6+ digits) is ``key_id``."""
        if len(key_id) < 6:
            raise ChorusError("give at least 6 digits of the key id (see `chorus keys list`)")
        matches = [as_str(d) for d in self._r.hkeys(self.keys.api_keys()) if as_str(d).startswith(key_id)]
        if len(matches) != 1:
            raise ChorusError(f"{len(matches)} keys match {key_id!r}; give more digits")
        raw = self._r.hget(self.keys.api_keys(), matches[0])
        self._r.hdel(self.keys.api_keys(), matches[0])
        return ApiKey(**json.loads(raw or "{}"))
