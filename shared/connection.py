"""Redis clients (sync and asyncio) built from :class:`~shared.config.RedisSettings`."""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
import redis.asyncio as aredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.config import RedisSettings
from shared.errors import ChorusError, ConfigError, RedisAuthError, RedisUnavailable

__all__ = [
    "SERVER_STATE_CODES",
    "as_str",
    "async_client",
    "check_eviction",
    "client_url",
    "eviction_policy",
    "is_outage",
    "server_state",
    "sync_client",
    "translate",
]


def client_url(client: redis.Redis | aredis.Redis) -> str:
    """Where a client points, for messages: never includes the password."""
    kw = client.connection_pool.connection_kwargs
    if kw.get("path"):
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    scheme = "rediss" if "SSL" in getattr(client.connection_pool.connection_class, "__name__", "") else "redis"
    return f"{scheme}://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def _defaults(settings: RedisSettings) -> dict[str, Any]:
    # no connection-level retries: a command that timed out may have run, and re-sending a
    # script that is not idempotent repeats its writes; chorus retries where it is safe
    return {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }


def sync_client(settings: RedisSettings) -> redis.Redis:
    """A client from the settings' URL (options in the URL win over chorus's defaults)."""
    return redis.Redis.from_url(settings.url(), **_defaults(settings))


def async_client(
    settings: RedisSettings, *, max_connections: int | None = None, pool_timeout_s: float = 5.0
) -> aredis.Redis:
    """An asyncio client; with ``max_connections`` its pool is bounded and a caller waits up to
    ``pool_timeout_s`` for a free connection (then ``redis.ConnectionError``), never opening more."""
    kwargs = _defaults(settings)
    kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
    if max_connections is None:
        return aredis.Redis.from_url(settings.url(), **kwargs)
    pool = aredis.BlockingConnectionPool.from_url(
        settings.url(), max_connections=max_connections, timeout=pool_timeout_s, **kwargs
    )
    return aredis.Redis(connection_pool=pool)


log = logging.getLogger(__name__)

SERVER_STATE_CODES = (
    "OOM",
    "READONLY",
    "UNBLOCKED",
    "BUSY",
    "LOADING",
    "MASTERDOWN",
    "MISCONF",
    "NOPERM",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "NOREPLICAS",
    "EXECABORT",
)
"""Error codes with which Redis describes its own state (memory, role, a running script, loading,
replication, ACLs): the server may accept the same command later, so they are outages, not bugs."""
_STATE_CLASSES: tuple[tuple[type[Exception], str], ...] = (
    (rexc.OutOfMemoryError, "OOM"),
    (rexc.ReadOnlyError, "READONLY"),
    (rexc.BusyLoadingError, "LOADING"),
    (rexc.NoPermissionError, "NOPERM"),
    (rexc.TryAgainError, "TRYAGAIN"),
    (rexc.MasterDownError, "MASTERDOWN"),
    (rexc.ClusterDownError, "CLUSTERDOWN"),
    (rexc.ExecAbortError, "EXECABORT"),
)
_STATE_RE = re.compile(r"(?:^|[\s:(-])(" + "|".join(SERVER_STATE_CODES) + r")\b")


def server_state(exc: BaseException) -> str | None:
    """The code (``OOM``, ``READONLY`` …) when ``exc`` is an error about the server's state, else None.

    redis-py maps some codes to exception classes and strips them from the message
    (``ReadOnlyError``, ``OutOfMemoryError`` …); the others keep the code in the text.
    """
    code = getattr(exc, "status_code", None)
    if isinstance(code, str) and code in SERVER_STATE_CODES:
        return code
    for cls, name in _STATE_CLASSES:
        if isinstance(exc, cls):
            return name
    if isinstance(exc, redis.ResponseError):
        m = _STATE_RE.search(str(exc)[:300])
        return m.group(1) if m else None
    return None


def is_outage(exc: BaseException) -> bool:
    """True for a lost connection, a timeout or a server-state error: back off and retry, do not crash."""
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) or server_state(exc) is not None


def translate(exc: redis.RedisError, url: str) -> ChorusError:
    """The chorus error for a Redis error met by a one-shot command (a producer, the CLI)."""
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in str(exc)[:40] or "NOAUTH" in str(exc)[:40]:
        return RedisAuthError(url, str(exc))
    code = server_state(exc)
    if code is not None:
        return RedisUnavailable(url, str(exc), code=code)
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return RedisUnavailable(url, str(exc))
    return ChorusError(f"Redis at {url} refused the command: {exc}")


def eviction_policy(client: redis.Redis) -> str | None:
    """The server's ``maxmemory-policy`` (CONFIG GET, else INFO for an ACL user without CONFIG);
    None when neither is allowed."""
    try:
        reply = client.config_get("maxmemory-policy")
        value = next(iter(reply.values()), None) if reply else None
        if value is not None:
            return as_str(value)
    except redis.ResponseError:
        pass
    try:
        info = client.info("memory")
    except redis.ResponseError:
        return None
    value = info.get("maxmemory_policy")
    return None if value is None else str(value)


def check_eviction(client: redis.Redis, *, allow: bool = False) -> str | None:
    """Refuse (ConfigError) a server that may evict keys: chorus's queues, leases and requests
    must never vanish. ``allow`` accepts the risk (logged). Returns the policy seen (None: unknown)."""
    policy = eviction_policy(client)
    if policy is None:
        log.warning("cannot read maxmemory-policy at %s (ACL?); chorus needs noeviction", client_url(client))
    elif policy != "noeviction":
        risk = (
            "requests, queued segments, leases and audio may vanish without a word once memory fills "
            "(volatile-* policies evict request metadata and audio streams first)"
        )
        if not allow:
            fix = "Set `maxmemory-policy noeviction`, or pass --allow-eviction to accept the risk"
            raise ConfigError(f"Redis at {client_url(client)} has maxmemory-policy {policy}: {risk}. {fix}")
        log.warning("maxmemory-policy is %s (allowed by --allow-eviction): %s", policy, risk)
    return policy


def as_str(value: bytes | str) -> str:
    """A reply value as text (clients here return bytes; redis-py's types allow str)."""
    return value.decode() if isinstance(value, bytes) else value
