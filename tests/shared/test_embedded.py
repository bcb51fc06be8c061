"""The embedded redis-server requires its per-instance password, and never shows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis
from shared.errors import RedisUnavailable


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(appendonly=True, appendfsync="always", data_dir=tmp_path) as s:
        yield s


def _client(server: EmbeddedRedis, password: str | None = None) -> redis.Redis:
    """A client that knows only the port; no retries, as redis-py retries auth errors with backoff."""
    return redis.Redis(
        host="127.0.0.1", port=server.port, password=password, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2
    )


def _password(server: EmbeddedRedis) -> str:
    password = urlsplit(server.url).password
    assert password, f"the URL carries a password: {server.safe_url}"
    return password


def test_a_client_without_the_password_is_refused(server: EmbeddedRedis) -> None:
    anonymous = _client(server)
    try:
        with pytest.raises((redis.AuthenticationError, redis.ResponseError), match=r"(?i)auth"):
            anonymous.set("k", "v")
    finally:
        anonymous.close()
    wrong = _client(server, password="not-it")
    try:
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            wrong.ping()
    finally:
        wrong.close()


def test_a_client_built_from_the_url_works(server: EmbeddedRedis) -> None:
    client = sync_client(RedisSettings.from_dsn(server.url))
    try:
        assert client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()
    assert redis.Redis.from_url(server.url).ping()


def test_each_instance_has_its_own_strong_password(server: EmbeddedRedis) -> None:
    other = EmbeddedRedis()  # not started: the password is made at construction
    other.stop()  # removes its temporary directory
    assert _password(server) != _password(other)
    assert len(_password(server)) >= 24


def test_the_password_is_not_shown(server: EmbeddedRedis) -> None:
    password = _password(server)
    assert password not in repr(server)
    assert password not in str(server)
    assert password not in server.safe_url
    assert f":{server.port}/" in server.safe_url, "safe_url still says where the server is"
    assert password not in RedisSettings.from_dsn(server.url).safe_url()


def test_restart_after_kill_keeps_the_url_and_the_data(server: EmbeddedRedis) -> None:
    url = server.url
    client = sync_client(RedisSettings.from_dsn(url))
    try:
        client.set("survives", "yes")
        server.kill()
        with pytest.raises(redis.ConnectionError), _client(server, _password(server)) as probe:
            probe.ping()  # it is really down
        server.start()
        assert server.url == url, "clients built before the restart still hold the old URL"
        assert client.get("survives") == b"yes", "the same client reconnects with the same password"
    finally:
        client.close()
    anonymous = _client(server)
    try:
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            anonymous.get("survives")
    finally:
        anonymous.close()


def test_a_start_failure_does_not_leak_the_password(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    blocker = EmbeddedRedis(data_dir=tmp_path / "a").start()  # holds the port
    try:
        clash = EmbeddedRedis(port=blocker.port, data_dir=tmp_path / "b")
        with pytest.raises(RedisUnavailable) as info:
            clash.start()
        assert _password(clash) not in str(info.value)
        assert "***" in str(info.value)
        clash.stop()
    finally:
        blocker.stop()
