"""Redis clients (sync and asyncio) built from :class:`~shared.config.RedisSettings`."""

from __future__ import annotations

import logging
from typing import Any, cast

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from chorus_client.outage import SERVER_STATE_CODES, as_str, client_url, is_outage, server_state, translate
from shared.config import RedisSettings
from shared.errors import ConfigError

__all__ = [
    "SERVER_STATE_CODES",
    "as_str",
    "async_client",
    "check_eviction",
    "client_url",
    "eviction_policy",
    "is_cluster",
    "is_outage",
    "server_state",
    "sync_client",
    "translate",
]


def _defaults(settings: RedisSettings) -> dict[str, Any]:
    # no connection-level retries: a command that timed out may have run, and re-sending a
    # script that is not idempotent repeats its writes; chorus retries where it is safe
    return {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }


def is_cluster(settings: RedisSettings) -> bool:
    """Whether the settings' server is a Redis Cluster node: as the settings say, else by asking it
    (``INFO cluster``); a server that cannot be reached now counts as one server (its first command
    then reports the outage)."""
    if settings.cluster is not None:
        return settings.cluster
    probe = redis.Redis.from_url(settings.url(), **_defaults(settings))
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False
    finally:
        probe.close()


def sync_client(settings: RedisSettings) -> redis.Redis:
    """A client from the settings' URL (options in the URL win over chorus's defaults). On a Redis
    Cluster, a ``redis.cluster.RedisCluster`` that routes each command to its slot's master (it has
    the commands chorus uses; typed as ``redis.Redis`` so every component takes either)."""
    if is_cluster(settings):
        return cast(redis.Redis, RedisCluster.from_url(settings.url(), **_cluster_defaults(settings)))
    return redis.Redis.from_url(settings.url(), **_defaults(settings))


def _cluster_defaults(settings: RedisSettings) -> dict[str, Any]:
    # the cluster client follows MOVED/ASK and re-reads the topology itself; chorus's own retries
    # (backoff on outages, idempotent enqueue) stay in charge of everything else
    return {"socket_timeout": settings.socket_timeout_s, "socket_connect_timeout": settings.connect_timeout_s}


def async_client(
    settings: RedisSettings, *, max_connections: int | None = None, pool_timeout_s: float = 5.0
) -> aredis.Redis:
    """An asyncio client; with ``max_connections`` its pool is bounded and a caller waits up to
    ``pool_timeout_s`` for a free connection (then ``redis.ConnectionError``), never opening more."""
    if is_cluster(settings):
        options = _cluster_defaults(settings)
        if max_connections is not None:
            options["max_connections"] = max_connections
        return cast(aredis.Redis, AsyncRedisCluster.from_url(settings.url(), **options))
    kwargs = _defaults(settings)
    kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
    if max_connections is None:
        return aredis.Redis.from_url(settings.url(), **kwargs)
    pool = aredis.BlockingConnectionPool.from_url(
        settings.url(), max_connections=max_connections, timeout=pool_timeout_s, **kwargs
    )
    return aredis.Redis(connection_pool=pool)


log = logging.getLogger(__name__)


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
