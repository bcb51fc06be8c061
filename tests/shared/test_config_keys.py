"""Settings from DSN/env with hidden secrets; key names; request ids."""

from __future__ import annotations

import pytest

from chorus_client.keys import Keys, new_request_id, shard_of, validate_tenant
from shared.config import RedisSettings
from shared.errors import ConfigError, RequestNotFound, UnknownTenant


def test_dsn_parsing_and_password_never_shown() -> None:
    s = RedisSettings.from_dsn("redis://bob:s3cret@example.org:6380/2")
    assert (s.host, s.port, s.db, s.username, s.password) == ("example.org", 6380, 2, "bob", "s3cret")
    assert "s3cret" not in repr(s)
    assert "s3cret" not in s.safe_url()
    assert "s3cret" in s.url()


def test_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_REDIS_URL", "redis://127.0.0.1:7000/0")
    s = RedisSettings.from_env()
    assert s is not None and s.port == 7000
    monkeypatch.delenv("CHORUS_REDIS_URL")
    assert RedisSettings.from_env() is None


@pytest.mark.parametrize("dsn", ["http://x", "redis://h:99999/0", "redis://h/abc"])
def test_bad_dsn_is_a_config_error(dsn: str) -> None:
    with pytest.raises(ConfigError):
        RedisSettings.from_dsn(dsn)


def test_request_ids_are_unique_and_carry_their_shard() -> None:
    ids = {new_request_id("s3") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(shard_of(i) == "s3" for i in ids)
    with pytest.raises(RequestNotFound):
        shard_of("nonsense")


def test_keys_share_the_shard_hash_tag() -> None:
    k = Keys("chorus", "s0")
    rid = new_request_id("s0")
    for key in (k.queue("acme", "rt"), k.depth(), k.active(), k.wake(), k.request(rid), k.dead()):
        assert "{s0}" in key
    assert k.audio(rid) == f"chorus:{{r:{rid}}}:audio"


def test_a_trailing_newline_is_not_a_valid_name() -> None:
    """``$`` in a regex matches before a final newline: names are checked with fullmatch."""
    with pytest.raises(UnknownTenant):
        validate_tenant("acme\n")
    with pytest.raises(RequestNotFound):
        shard_of(new_request_id() + "\n")
    with pytest.raises(ConfigError):
        RedisSettings.from_dsn("redis://127.0.0.1:6379/0", prefix="chorus\n")


def test_tenant_names_are_validated() -> None:
    assert validate_tenant("acme-1.prod") == "acme-1.prod"
    for bad in ("", "a:b", "x" * 65, "{s0}", "空"):
        with pytest.raises(UnknownTenant):
            validate_tenant(bad)
