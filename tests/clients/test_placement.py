"""The client's placement: the shard count it caches, the forwards it remembers, and how it follows them."""

from __future__ import annotations

import pytest
import redis

from chorus_client import Client, Voice
from chorus_client.constants import PLACEMENT_TTL_S, SHARD_COUNT_TTL_S
from chorus_client.drive import run_sync
from chorus_client.errors import ProtocolError
from chorus_client.keys import Keys, home_shard, shard_of
from chorus_client.placement import MAX_REMEMBERED, Placement, parse_shard_count


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_count_is_read_then_cached(r: redis.Redis) -> None:
    clock = Clock()
    placement = Placement(Keys(), clock=clock)
    assert run_sync(r, placement.count()) == 1  # absent: one shard
    r.set(Keys().shards(), "4")
    assert run_sync(r, placement.count()) == 1  # still cached
    clock.t += SHARD_COUNT_TTL_S
    assert run_sync(r, placement.count()) == 4
    assert run_sync(r, placement.shard_for("acme")) == home_shard("acme", 4)


@pytest.mark.parametrize("raw", [b"0", b"-1", b"1025", b"four", b"", b"1.5"])
def test_a_damaged_count_is_refused_not_guessed(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_shard_count(raw)


def test_forwards_are_remembered_for_a_while_and_bounded() -> None:
    clock = Clock()
    placement = Placement(Keys(), count=4, clock=clock)
    placement.learn("acme", "s2")
    assert run_sync(None, placement.shard_for("acme")) == "s2"  # type: ignore[arg-type]
    clock.t += PLACEMENT_TTL_S
    assert run_sync(None, placement.shard_for("acme")) == home_shard("acme", 4)  # type: ignore[arg-type]
    for i in range(MAX_REMEMBERED + 5):
        placement.learn(f"t{i}", "s1")
    assert len(placement._moved) == MAX_REMEMBERED


def test_the_client_follows_a_forward_and_a_given_id_is_not_routed(r: redis.Redis) -> None:
    r.set(Keys().shards(), "4")
    policy = '{"weight":1,"max_queued":100,"max_inflight":0,"lanes":["rt","interactive","batch"],"shard":"s3"}'
    tenant = next(f"t{i}" for i in range(1000) if home_shard(f"t{i}", 4) == "s1")
    r.hset(Keys().of_shard("s1").tenants(), tenant, policy)
    r.hset(Keys().of_shard("s3").tenants(), tenant, policy)
    voice = Voice("jm_kumo", "zh", 24000)
    client = Client(r, voices=lambda name, text: voice)
    assert shard_of(client.enqueue("你好", tenant=tenant).request_id) == "s3"
    assert r.exists(Keys().of_shard("s1").depth()) == 0  # the refused call wrote nothing
    from chorus_client.errors import TenantMoved

    with pytest.raises(TenantMoved):  # an id naming s1: not routed, the forward is the caller's to heed
        client.enqueue("你好", tenant=tenant, request_id="s1.AAAAAAAAAAAAAAAAAAAAAA")
