"""Settings dataclasses, built from a DSN or the environment, validated at start-up.

Secrets (the Redis password) never appear in ``repr`` or logs: use
:meth:`RedisSettings.safe_url` wherever a URL is shown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from shared.errors import ConfigError

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_SHARD",
    "ENV_HOME",
    "ENV_REDIS_URL",
    "RedisSettings",
    "chorus_home",
]

ENV_REDIS_URL = "CHORUS_REDIS_URL"
ENV_PREFIX = "CHORUS_PREFIX"
ENV_HOME = "CHORUS_HOME"
DEFAULT_PREFIX = "chorus"
DEFAULT_SHARD = "s0"
DEFAULT_SOCKET_TIMEOUT_S = 5.0
DEFAULT_CONNECT_TIMEOUT_S = 2.0

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how chorus names its keys there."""

    host: str = "127.0.0.1"
    """Host name or address of the Redis server."""
    port: int = 6379
    """TCP port of the Redis server."""
    db: int = 0
    """Logical database number."""
    username: str | None = None
    """ACL user name, if the server uses ACLs."""
    password: str | None = field(default=None, repr=False)
    """Password; hidden from repr and from :meth:`safe_url`."""
    ssl: bool = False
    """Use TLS (``rediss://``)."""
    prefix: str = DEFAULT_PREFIX
    """First part of every key chorus writes, so several deployments can share a server."""
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    """Timeout of one non-blocking command; a down server fails fast rather than hangs."""
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    """Timeout of opening a connection."""

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigError(f"key prefix {self.prefix!r} must match {_PREFIX_RE.pattern}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"Redis port {self.port} out of range")

    @classmethod
    def from_dsn(cls, dsn: str, *, prefix: str = DEFAULT_PREFIX) -> RedisSettings:
        """Parse ``redis://[user:password@]host[:port][/db]`` (or ``rediss://``)."""
        parts = urlsplit(dsn)
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigError(f"Redis URL must start with redis:// or rediss://, got {dsn.split(':')[0]!r}")
        try:
            port = parts.port or 6379
        except ValueError as exc:
            raise ConfigError(f"bad port in Redis URL: {exc}") from None
        path = parts.path.lstrip("/")
        try:
            db = int(path) if path else 0
        except ValueError:
            raise ConfigError(f"Redis URL database must be a number, got {path!r}") from None
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=db,
            username=parts.username or None,
            password=parts.password,
            ssl=parts.scheme == "rediss",
            prefix=prefix,
        )

    @classmethod
    def from_env(cls, url: str | None = None) -> RedisSettings | None:
        """Settings from ``url`` or ``$CHORUS_REDIS_URL``; None when neither is set."""
        dsn = url or os.environ.get(ENV_REDIS_URL)
        if not dsn:
            return None
        return cls.from_dsn(dsn, prefix=os.environ.get(ENV_PREFIX, DEFAULT_PREFIX))

    def url(self) -> str:
        """The full URL, password included: for building clients, never for display."""
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="")
            if self.password:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"

    def safe_url(self) -> str:
        """The URL with the password masked, for logs and messages."""
        auth = f"{self.username or ''}:***@" if self.password else ""
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"


def chorus_home() -> Path:
    """Root of chorus's local state (model store): ``$CHORUS_HOME`` or ``~/.cache/chorus``."""
    env = os.environ.get(ENV_HOME)
    return Path(env) if env else Path.home() / ".cache" / "chorus"
