"""Which Redis errors are outages, and the chorus error each becomes.

A lost connection, a timeout, or a reply in which Redis describes its own state
(``OOM``, ``READONLY``, ``BUSY``, ``LOADING`` …) is an outage: a long-running
process backs off and retries (:func:`is_outage`). A one-shot call translates the
error for its caller (:func:`translate`): :class:`~chorus_client.errors.RedisUnavailable`
with the state's code, :class:`~chorus_client.errors.RedisAuthError` for refused
credentials. Messages name the server with :func:`client_url`, never its password.
"""

from __future__ import annotations

import re

import redis
import redis.asyncio as aredis
import redis.exceptions as rexc

from chorus_client.errors import ChorusError, RedisAuthError, RedisUnavailable

__all__ = ["SERVER_STATE_CODES", "as_str", "client_url", "is_outage", "server_state", "translate"]


def client_url(client: redis.Redis | aredis.Redis) -> str:
    """Where a client points, for messages: never includes the password. A Redis Cluster client
    (``redis.cluster.RedisCluster`` or its asyncio twin) is named by ``redis+cluster://`` and the node
    it started from."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:  # a cluster client: no single pool
        node = getattr(client, "get_default_node", lambda: None)()
        where = f"{node.host}:{node.port}" if node is not None else "?"
        return f"redis+cluster://{where}"
    kw = client.connection_pool.connection_kwargs
    if kw.get("path"):
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    scheme = "rediss" if "SSL" in getattr(client.connection_pool.connection_class, "__name__", "") else "redis"
    return f"{scheme}://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


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


def as_str(value: bytes | str) -> str:
    """A reply value as text (clients here return bytes; redis-py's types allow str)."""
    return value.decode() if isinstance(value, bytes) else value
