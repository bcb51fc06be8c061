"""The fair scheduler on a real redis-server: weights, cost correction, caps, lanes, sparse tenants."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import redis
from redis.crc import key_slot

from broker.claim import Claimer
from broker.policy import TenantPolicy
from broker.producer import Producer
from broker.scheduler import SCHEDULER
from broker.tenants import Tenants
from chorus_client.keys import Keys

SHORT = "你好"  # 2 weighted characters, one segment
LONG = "今天天气很好我们一起去公园散步吧"  # 16 weighted characters, one segment


def _warm(r: redis.Redis, rate: int, quantum: int) -> None:
    """Start from a warmed-up scheduler (rate and quantum measured, quantum just set)."""
    r.hset(Keys().drr(), mapping={"~rate": rate, "~q": quantum, "~n": SCHEDULER.ewma, "~qt": int(time.time() * 1000)})


def _fill(r: redis.Redis, tenant: str, n: int, text: str = SHORT, priority: str = "batch") -> None:
    p = Producer(r)
    for _ in range(n):
        p.enqueue(text, tenant=tenant, priority=priority)


def _serve(r: redis.Redis, steps: int, measured: Callable[[str, int], int]) -> tuple[Counter[str], Counter[str]]:
    """Claim one segment at a time and complete it at once; count segments and worker time per tenant."""
    c = Claimer(r)
    count: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    for _ in range(steps):
        (item,) = c.claim("w", 1)
        us = measured(item.tenant, item.chars)
        c.complete(item, item.request_id, ok=True, measured_us=us)
        count[item.tenant] += 1
        busy[item.tenant] += us
    return count, busy


def test_weights_share_worker_time(r: redis.Redis) -> None:
    t = Tenants(r)
    t.set("a", TenantPolicy(weight=3))
    t.set("b", TenantPolicy(weight=1))
    _warm(r, 1000, 4000)  # a turn of weight 1 is two segments
    _fill(r, "a", 200)
    _fill(r, "b", 200)
    count, _ = _serve(r, 200, lambda tenant, chars: 1000 * chars)
    assert abs(count["a"] / count["b"] - 3) < 0.15, count
    served = Keys().served()
    assert (int(r.hget(served, "a:batch:n")), int(r.hget(served, "b:batch:n"))) == (count["a"], count["b"])


def test_long_segments_buy_no_more_worker_time(r: redis.Redis) -> None:
    _warm(r, 1000, 16000)
    _fill(r, "long", 100, LONG)
    _fill(r, "short", 300, SHORT)
    _, busy = _serve(r, 200, lambda tenant, chars: 1000 * chars)
    assert abs(busy["long"] / busy["short"] - 1) < 0.1, busy


def test_measured_time_corrects_a_wrong_estimate(r: redis.Redis) -> None:
    # both tenants declare the same characters, but "slow"'s segments take 5x the worker time
    _warm(r, 1000, 10000)
    _fill(r, "slow", 200)
    _fill(r, "fast", 400)
    count, busy = _serve(r, 300, lambda tenant, chars: 5000 if tenant == "slow" else 1000)
    assert abs(busy["slow"] / busy["fast"] - 1) < 0.1, (count, busy)
    assert count["fast"] > 4 * count["slow"]


def test_inflight_cap_parks_the_tenant_and_completion_unparks_it(r: redis.Redis, keys: Keys) -> None:
    Tenants(r).set("capped", TenantPolicy(max_inflight=1))
    _fill(r, "capped", 5)
    _fill(r, "free", 5)
    c = Claimer(r)
    got = c.claim("w", 4)
    assert Counter(i.tenant for i in got) == {"capped": 1, "free": 3}
    assert r.hexists(keys.drr(), "capped:p") and r.sismember(keys.active_set(), "capped")
    r.delete(keys.wake())
    first = next(i for i in got if i.tenant == "capped")
    c.complete(first, first.request_id, ok=True, measured_us=100)
    assert not r.hexists(keys.drr(), "capped:p")
    assert r.llen(keys.wake()) == 1, "an idle worker is woken for the unparked tenant"
    assert [i.tenant for i in c.claim("w", 5)].count("capped") == 1


def test_raising_the_cap_unparks_at_once(r: redis.Redis, keys: Keys) -> None:
    t = Tenants(r)
    t.set("capped", TenantPolicy(max_inflight=1))
    _fill(r, "capped", 3)
    c = Claimer(r)
    assert len(c.claim("w", 3)) == 1
    t.update("capped", max_inflight=3)
    assert len(c.claim("w", 3)) == 2


def test_batch_keeps_a_share_under_interactive_load(r: redis.Redis) -> None:
    _fill(r, "a", 5, priority="batch")
    _fill(r, "a", 40, priority="interactive")
    c = Claimer(r)
    lanes = [i.lane for i in c.claim("w", 30)]
    assert lanes.count("batch") == 3, lanes
    assert lanes[:9].count("batch") == 0 and lanes[9] == "batch"


def test_idle_tenant_is_served_before_a_busy_one(r: redis.Redis) -> None:
    _fill(r, "heavy", 100, LONG)
    c = Claimer(r)
    for _ in range(5):
        (item,) = c.claim("w", 1)
        c.complete(item, item.request_id, ok=True, measured_us=1000 * item.chars)
    Producer(r).enqueue(SHORT, tenant="light")
    assert c.claim("w", 1)[0].tenant == "light"


def test_reactivating_with_work_in_flight_earns_no_priority(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.drr(), mapping={"~rate": 1000, "~q": 2000})  # one short segment per turn
    _fill(r, "heavy", 50)
    p, c = Producer(r), Claimer(r)
    p.enqueue(SHORT, tenant="x")
    assert c.claim("w", 1)[0].tenant == "heavy", "heavy joined first"
    assert c.claim("w", 1)[0].tenant == "x"  # x is now in flight, its queue empty
    assert c.claim("w", 1)[0].tenant == "heavy"
    p.enqueue(SHORT, tenant="x")  # x still has a segment in flight
    assert r.lrange(keys.fresh(), 0, -1) == [], "x rejoins the ring, not the fresh list"


def test_many_parked_tenants_do_not_hide_a_claimable_one(r: redis.Redis) -> None:
    t = Tenants(r)
    c = Claimer(r)
    for i in range(150):
        t.set(f"p{i}", TenantPolicy(max_inflight=1))
        _fill(r, f"p{i}", 2)
    assert len(c.claim("w", 150)) == 150  # each now at its cap, with one more queued
    _fill(r, "free", 1)
    got = c.claim("w", 1)
    assert [i.tenant for i in got] == ["free"]


def test_work_conserving_an_idle_tenants_share_goes_to_the_others(r: redis.Redis) -> None:
    t = Tenants(r)
    for name, weight in (("a", 3), ("b", 1), ("idle", 4)):
        t.set(name, TenantPolicy(weight=weight))
    _warm(r, 1000, 2000)
    _fill(r, "a", 100)
    _fill(r, "b", 100)
    c = Claimer(r)
    got = c.claim("w", 40)
    assert len(got) == 40, "nothing is held back for the configured but idle tenant"
    count = Counter(i.tenant for i in got)
    assert abs(count["a"] / count["b"] - 3) < 0.25, count


def test_every_key_the_scripts_touch_is_in_the_shards_hash_slot(r: redis.Redis, keys: Keys) -> None:
    t = Tenants(r)
    t.set("a", TenantPolicy(weight=2, max_inflight=1))
    _fill(r, "a", 3)
    _fill(r, "b", 3, priority="interactive")
    c = Claimer(r)
    for item in c.claim("w", 3):
        c.complete(item, item.request_id, ok=True, measured_us=500)
    for key in (k.decode() for k in r.keys("*")):
        if key.endswith(":audio"):
            assert key.startswith(f"{keys.prefix}:{{r:"), key  # the audio stream's own tag, written outside the scripts
        else:
            assert key.startswith(f"{keys.prefix}:{{{keys.shard}}}:"), key
    slots = {key_slot(k) for k in r.keys("*") if not k.endswith(b":audio")}
    assert len(slots) == 1, "one Redis Cluster slot: every script call is valid on a cluster"
