"""Tenants in shards on a real redis-server: the count, home shards, growing, moving, forwards."""

from __future__ import annotations

import json

import pytest
import redis

from broker.placement import Shards
from broker.policy import DefaultPolicy, TenantPolicy
from broker.producer import Producer
from broker.tenants import Tenants
from chorus.testing import null_engine, sleep_engine
from chorus_client.errors import ConfigError, TenantMoved
from chorus_client.keys import Keys, home_shard, shard_of
from gateway.subscriber import Subscriber
from tests.helpers import keys_without_ttl
from workers.worker import Worker, WorkerConfig


def drain(worker: Worker) -> None:
    while worker.run_once():
        pass
    worker.run_once()  # a last look at every shard


def heard(r: redis.Redis, rid: str) -> list[int]:
    frames = list(Subscriber(r).frames(rid, timeout_s=5))
    return [f.segment for f in frames]


def tenant_homed(count: int, shard: str, avoid: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """A tenant name whose home shard under ``count`` shards is ``shard``."""
    for i in range(10_000):
        name = f"t{i}"
        if name not in avoid and home_shard(name, count) == shard:
            return name
    raise AssertionError("no such name")


def test_one_shard_by_default(r: redis.Redis) -> None:
    assert Shards(r).count() == 1 and Shards(r).names() == ["s0"]
    assert shard_of(Producer(r).enqueue("你好", tenant="acme").request_id) == "s0"


def test_tenants_land_in_their_home_shards_and_every_shard_is_served(r: redis.Redis) -> None:
    Shards(r).grow(4)
    producer, rids = Producer(r), {}
    for i in range(16):
        tenant = f"tenant{i}"
        rids[tenant] = producer.enqueue(["你好", "世界"], tenant=tenant).request_id
        assert shard_of(rids[tenant]) == home_shard(tenant, 4)
    assert len({shard_of(rid) for rid in rids.values()}) == 4
    worker = Worker(r, null_engine(), config=WorkerConfig(name="w", idle_wait_s=0.1))
    drain(worker)
    assert worker.shards == ["s0", "s1", "s2", "s3"]
    for rid in rids.values():
        assert heard(r, rid) == [0, 1]
    assert keys_without_ttl(r) == []


def test_growing_pins_known_tenants_where_they_are(r: redis.Redis) -> None:
    admin = Tenants(r)
    moving = tenant_homed(4, "s3")  # home s0 under one shard, s3 under four
    admin.set(moving, TenantPolicy(weight=5))
    queued = Producer(r).enqueue("你好", tenant="busy-one").request_id  # known by its queued work only
    pinned = Shards(r).grow(4)
    assert pinned[moving] == "s0"
    assert (home_shard("busy-one", 4) == "s0") or pinned["busy-one"] == "s0"
    assert Shards(r).locate(moving) == "s0" and admin.get(moving).weight == 5  # type: ignore[union-attr]
    fresh = Producer(r)  # a producer that never saw it: home s3 forwards to s0
    assert shard_of(fresh.enqueue("你好", tenant=moving).request_id) == "s0"
    assert shard_of(fresh.enqueue("你好", tenant=tenant_homed(4, "s2")).request_id) == "s2"
    drain(Worker(r, null_engine(), config=WorkerConfig(name="w", idle_wait_s=0.1)))
    assert heard(r, queued) == [0]
    with pytest.raises(ConfigError, match="only grow"):
        Shards(r).grow(2)


def test_moving_a_tenant_loses_and_doubles_nothing(r: redis.Redis) -> None:
    shards = Shards(r)
    shards.grow(3)
    tenant = tenant_homed(3, "s0")
    Tenants(r).set(tenant, TenantPolicy(weight=2, max_inflight=4))
    producer = Producer(r)
    before = [producer.enqueue(["你好", "世界", "再见"], tenant=tenant).request_id for _ in range(5)]
    source, left = shards.move(tenant, "s2", wait_s=0)
    assert source == "s0" and left.queued == 15  # switched; nothing served yet: the source still holds it
    # a producer that still believes the tenant is in s0 is forwarded (nothing is written there)
    after = [producer.enqueue(["你好"], tenant=tenant).request_id for _ in range(3)]
    assert {shard_of(rid) for rid in before} == {"s0"} and {shard_of(rid) for rid in after} == {"s2"}
    stale = Producer(r)
    stale.placement.learn(tenant, "s0")
    after.append(stale.enqueue("你好", tenant=tenant).request_id)
    assert shard_of(after[-1]) == "s2"
    assert Tenants(r).get(tenant) == TenantPolicy(weight=2, max_inflight=4, shard="s2")
    drain(Worker(r, null_engine(), config=WorkerConfig(name="w", idle_wait_s=0.1)))
    assert shards.drain(tenant, "s0").empty
    for rid in before:
        assert heard(r, rid) == [0, 1, 2]
    for rid in after:
        assert heard(r, rid) == [0]
    assert list(Tenants(r).all()) == [tenant]  # the forwards are not policies
    assert Tenants(r).delete(tenant) and all(shards.entry(s, tenant) is None for s in shards.names())


def test_a_move_waits_for_the_source_to_drain(r: redis.Redis) -> None:
    import threading

    shards = Shards(r)
    shards.grow(2)
    tenant = tenant_homed(2, "s0")
    rids = [Producer(r).enqueue(["你好", "世界"], tenant=tenant).request_id for _ in range(4)]
    worker = Worker(r, sleep_engine(20), config=WorkerConfig(name="w", idle_wait_s=0.05))
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        source, left = shards.move(tenant, "s1", wait_s=20, poll_s=0.02)
    finally:
        worker.stop()
        runner.join(10)
    assert source == "s0" and left.empty
    for rid in rids:
        assert heard(r, rid) == [0, 1]


def test_forwards_that_loop_are_refused_clearly(r: redis.Redis) -> None:
    shards = Shards(r)
    shards.grow(2)
    tenant = tenant_homed(2, "s0")
    policy = TenantPolicy().to_dict()
    r.hset(Keys().of_shard("s0").tenants(), tenant, json.dumps({**policy, "shard": "s1"}))
    r.hset(Keys().of_shard("s1").tenants(), tenant, json.dumps({**policy, "shard": "s0"}))
    with pytest.raises(TenantMoved):
        shards.locate(tenant)
    with pytest.raises(TenantMoved):
        Producer(r).enqueue("你好", tenant=tenant)
    assert r.exists(Keys().of_shard("s0").depth(), Keys().of_shard("s1").depth()) == 0  # nothing written


def test_the_default_policy_holds_in_every_shard(r: redis.Redis) -> None:
    Shards(r).grow(3)
    Tenants(r).set_default(DefaultPolicy(reject=True))
    from chorus_client.errors import UnknownTenant

    for shard in ("s0", "s1", "s2"):
        with pytest.raises(UnknownTenant):
            Producer(r).enqueue("你好", tenant=tenant_homed(3, shard))


def test_a_policy_naming_a_shard_places_the_tenant_there(r: redis.Redis) -> None:
    Shards(r).grow(4)
    tenant = tenant_homed(4, "s1")
    Tenants(r).set(tenant, TenantPolicy(weight=3, shard="s3"))
    assert Shards(r).locate(tenant) == "s3"
    assert shard_of(Producer(r).enqueue("你好", tenant=tenant).request_id) == "s3"
    with pytest.raises(ConfigError):
        Tenants(r).set(tenant, TenantPolicy(shard="s9"))


def test_a_worker_shares_time_across_shards_by_weight(r: redis.Redis) -> None:
    """Tenants a (weight 3), b (2), c (1), each alone in its shard, all flooded: worker time 3:2:1;
    and one more weight-1 tenant crowding c's shard does not take from a or b more than its share."""
    shards = Shards(r)
    shards.grow(3)
    admin = Tenants(r)
    for tenant, weight, shard in (("a", 3, "s0"), ("b", 2, "s1"), ("c", 1, "s2"), ("d", 1, "s2")):
        admin.set(tenant, TenantPolicy(weight=weight, shard=shard))
    producer = Producer(r)
    for tenant in ("a", "b", "c", "d"):
        for _ in range(60):
            producer.enqueue(["你好世界"] * 8, tenant=tenant)
    worker = Worker(r, sleep_engine(0.5), config=WorkerConfig(name="w", idle_wait_s=0.1))
    for _ in range(700):
        worker.run_once()
    served = {k.decode(): int(v) for k, v in r.hgetall(Keys().of_shard("s0").served()).items()}
    for shard in ("s1", "s2"):
        served |= {k.decode(): int(v) for k, v in r.hgetall(Keys().of_shard(shard).served()).items()}
    time = {t: sum(v for k, v in served.items() if k.startswith(f"{t}:") and k.endswith(":us")) for t in "abcd"}
    total = sum(time.values())
    for tenant, weight in (("a", 3), ("b", 2), ("c", 1), ("d", 1)):
        assert abs(time[tenant] / total - weight / 7) < 0.05, (tenant, time)
