"""Fixtures: a real redis-server on a free port for the session, a clean database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from chorus_client.keys import Keys
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis
from tests.helpers import tiny_engine
from workers.engine import Engine


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(debug=True) as server:  # DEBUG SLEEP stalls it in the outage tests
        yield server


@pytest.fixture()
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture()
def r(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = sync_client(RedisSettings.from_dsn(redis_server.url))
    client.flushall()
    yield client
    client.close()


@pytest.fixture()
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="session")
def engine() -> Engine:
    return tiny_engine()
