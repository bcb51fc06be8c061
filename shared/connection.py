"""Redis clients (sync and asyncio) built from :class:`~shared.config.RedisSettings`."""

from __future__ import annotations

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


def async_client(settings: RedisSettings) -> aredis.Redis:
    return aredis.Redis(
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


def as_str(value: bytes | str) -> str:
    """A reply value as text (clients here return bytes; redis-py's types allow str)."""
    return value.decode() if isinstance(value, bytes) else value
