"""Settings dataclasses, built from a DSN or the environment, validated at start-up.

Secrets (the Redis password) never appear in ``repr`` or logs: use
:meth:`RedisSettings.safe_url` wherever a URL is shown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.connection import parse_url

from chorus_client.constants import DEFAULT_PREFIX, DEFAULT_SHARD, Durability
from shared.errors import ConfigError

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_SHARD",
    "ENV_HOME",
    "ENV_REDIS_URL",
    "RedisSettings",
    "chorus_home",
    "durability_from_env",
    "mask_url",
]

ENV_REDIS_URL = "CHORUS_REDIS_URL"
ENV_PREFIX = "CHORUS_PREFIX"
ENV_HOME = "CHORUS_HOME"
DEFAULT_SOCKET_TIMEOUT_S = 5.0
DEFAULT_CONNECT_TIMEOUT_S = 2.0

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how chorus names its keys there.

    The URL is parsed by redis-py (``redis.connection.parse_url``): ``redis://``,
    ``rediss://`` (TLS) and ``unix://``, percent-encoded user names and passwords,
    and query options (``?socket_timeout=30&ssl_cert_reqs=none``), which take
    precedence over the defaults below.
    """

    dsn: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    """The URL, secrets included: never shown (see :meth:`safe_url`)."""
    prefix: str = DEFAULT_PREFIX
    """First part of every key chorus writes, so several deployments can share a server."""
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    """Timeout of one non-blocking command; a down server fails fast rather than hangs."""
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    """Timeout of opening a connection."""
    cluster: bool | None = None
    """Redis Cluster or one server: None asks the server (``INFO cluster``) when a client is built;
    ``redis+cluster://`` / ``rediss+cluster://`` or ``?cluster=yes|no`` in the URL say it outright."""

    def __post_init__(self) -> None:
        if not _PREFIX_RE.fullmatch(self.prefix):
            raise ConfigError(f"key prefix {self.prefix!r} must match {_PREFIX_RE.pattern}")
        dsn, cluster = _split_cluster(self.dsn)
        if cluster is not None:
            if self.cluster is not None and self.cluster != cluster:
                raise ConfigError(f"the URL {mask_url(dsn)} says cluster={cluster}, the settings {self.cluster}")
            object.__setattr__(self, "dsn", dsn)
            object.__setattr__(self, "cluster", cluster)
        self.options()  # validate now, not at the first command

    def options(self) -> dict[str, Any]:
        """The connection options redis-py reads from the URL (host, port, db, username, password, …)."""
        scheme = self.dsn.split("://", 1)[0].lower() if "://" in self.dsn else ""
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"Redis URL must start with redis://, rediss:// or unix://, got {scheme or self.dsn!r}")
        try:
            opts: dict[str, Any] = parse_url(self.dsn)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ConfigError(f"bad Redis URL {self.safe_url()}: {exc}") from None
        path = urlsplit(self.dsn).path.lstrip("/") if scheme != "unix" else ""
        if path and not path.isdigit():
            raise ConfigError(f"Redis URL database must be a number, got {path!r}")
        return opts

    @property
    def host(self) -> str:
        return str(self.options().get("host") or self.options().get("path") or "127.0.0.1")

    @property
    def port(self) -> int:
        return int(self.options().get("port") or 6379)

    @property
    def db(self) -> int:
        return int(self.options().get("db") or 0)

    @property
    def username(self) -> str | None:
        value = self.options().get("username")
        return str(value) if value else None

    @property
    def password(self) -> str | None:
        value = self.options().get("password")
        return str(value) if value is not None else None

    @property
    def ssl(self) -> bool:
        return self.dsn.lower().startswith("rediss://")

    @classmethod
    def from_dsn(cls, dsn: str, *, prefix: str = DEFAULT_PREFIX) -> RedisSettings:
        """Settings for ``redis://[user:password@]host[:port][/db][?option=value…]``, ``rediss://``,
        ``unix://``, or ``redis+cluster://`` / ``rediss+cluster://`` (any one node of a Redis Cluster)."""
        return cls(dsn=dsn, prefix=prefix)

    @classmethod
    def from_env(cls, url: str | None = None) -> RedisSettings | None:
        """Settings from ``url`` or ``$CHORUS_REDIS_URL``; None when neither is set."""
        dsn = url or os.environ.get(ENV_REDIS_URL)
        if not dsn:
            return None
        return cls.from_dsn(dsn, prefix=os.environ.get(ENV_PREFIX, DEFAULT_PREFIX))

    def url(self) -> str:
        """The full URL, password included: for building clients, never for display."""
        return self.dsn

    def safe_url(self) -> str:
        """The URL with the password masked and the query dropped, for logs and messages."""
        return mask_url(self.dsn)


def _split_cluster(dsn: str) -> tuple[str, bool | None]:
    """The URL as redis-py reads it, and what it says about cluster mode (None: nothing)."""
    parts = urlsplit(dsn) if "://" in dsn else None
    if parts is None:
        return dsn, None
    scheme, cluster = parts.scheme.lower(), None
    if scheme in ("redis+cluster", "rediss+cluster"):
        scheme, cluster = scheme.split("+", 1)[0], True
    query = [q for q in parts.query.split("&") if q]
    flags = [q.split("=", 1)[1].lower() if "=" in q else "" for q in query if q.split("=", 1)[0] == "cluster"]
    if flags:
        if flags[-1] not in ("yes", "no", "true", "false", "1", "0"):
            raise ConfigError(f"?cluster= takes yes or no, got {flags[-1]!r}")
        said = flags[-1] in ("yes", "true", "1")
        if cluster is not None and cluster != said:
            raise ConfigError("the URL's scheme and its ?cluster= disagree")
        cluster = said
    query = [q for q in query if q.split("=", 1)[0] != "cluster"]
    rest = dsn.split("://", 1)[1]
    base = rest.split("?", 1)[0]
    return f"{scheme}://{base}" + (f"?{'&'.join(query)}" if query else ""), cluster


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` and the query string dropped (it may carry secrets)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            auth, host = netloc.rsplit("@", 1)
            user = auth.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in auth or user else f"***@{host}"
        return f"{parts.scheme}://{netloc}{parts.path}"
    except ValueError:
        return "<unparseable Redis URL>"


def durability_from_env() -> Durability:
    """``$CHORUS_DURABILITY`` (``none`` when unset); ConfigError for another value."""
    raw = os.environ.get("CHORUS_DURABILITY", Durability.NONE.value)
    try:
        return Durability(raw)
    except ValueError:
        raise ConfigError(f"CHORUS_DURABILITY must be one of {[d.value for d in Durability]}, got {raw!r}") from None


def chorus_home() -> Path:
    """Root of chorus's local state (model store): ``$CHORUS_HOME`` or ``~/.cache/chorus``."""
    env = os.environ.get(ENV_HOME)
    return Path(env) if env else Path.home() / ".cache" / "chorus"
