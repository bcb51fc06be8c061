"""Redis clients (sync and asyncio) built from :class:`~shared.config.RedisSettings`."""

from __future__ import annotations

import redis
import redis.asyncio as aredis

from shared.config import RedisSettings

__all__ = ["async_client", "sync_client"]


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
