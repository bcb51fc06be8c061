"""Redis clients (sync and asyncio) built from :class:`~shared.config.RedisSettings`."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis

from shared.config import RedisSettings

__all__ = ["as_str", "async_client", "client_url", "sync_client"]


def client_url(client: redis.Redis | aredis.Redis) -> str:
    """Where a client points, for messages: never includes the password."""
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def sync_client(settings: RedisSettings) -> redis.Redis:
    return redis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        health_check_interval=30,
    )


def async_client(settings: RedisSettings, *, max_connections: int | None = None,
                 pool_timeout_s: float = 5.0) -> aredis.Redis:  # fmt: skip
    """An asyncio client; with ``max_connections`` its pool is bounded and a caller waits up to
    ``pool_timeout_s`` for a free connection (then ``redis.ConnectionError``), never opening more."""
    kwargs: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "db": settings.db,
        "username": settings.username,
        "password": settings.password,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        "health_check_interval": 30,
    }
    if max_connections is None:
        return aredis.Redis(ssl=settings.ssl, **kwargs)
    conn_class = aredis.SSLConnection if settings.ssl else aredis.Connection
    pool = aredis.BlockingConnectionPool(max_connections=max_connections, timeout=pool_timeout_s,
                                         connection_class=conn_class, **kwargs)  # fmt: skip
    return aredis.Redis(connection_pool=pool)


def as_str(value: bytes | str) -> str:
    """A reply value as text (clients here return bytes; redis-py's types allow str)."""
    return value.decode() if isinstance(value, bytes) else value
