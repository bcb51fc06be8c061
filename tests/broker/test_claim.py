"""Claiming over a real redis-server: round robin across tenants, lane priority, pending until done."""

from __future__ import annotations

import redis

from broker.claim import Claimer
from broker.producer import Producer
from broker.wake import ListWaker
from chorus_client.keys import GROUP, Keys
from chorus_client.protocol import decode_segment


def _tenants(items: list) -> list[str]:  # type: ignore[type-arg]
    return [it.stream.split(":")[-2] for it in items]


def test_round_robin_across_tenants(r: redis.Redis, keys: Keys) -> None:
    # a quantum of one segment's cost: equal weights alternate once both have spent their first turn
    r.hset(keys.drr(), mapping={"~rate": 1000, "~q": 2000})
    p = Producer(r)
    for _ in range(3):
        p.enqueue("你好", tenant="a")
    p.enqueue("你好", tenant="b")
    p.enqueue("你好", tenant="b")
    c = Claimer(r)
    order = _tenants(c.claim("w1", 10))
    assert order == ["a", "b", "a", "b", "a"]


def test_lane_priority_inside_a_tenant(r: redis.Redis) -> None:
    p = Producer(r)
    p.enqueue("批量一，批量二。", tenant="a", priority="batch")
    p.enqueue("你好，世界。", tenant="a")
    c = Claimer(r)
    lanes = [it.stream.split(":")[-1] for it in c.claim("w1", 4)]
    assert lanes == ["rt", "interactive", "batch", "batch"]


def test_claimed_entries_stay_pending_until_completed(r: redis.Redis, keys: Keys) -> None:
    rid = Producer(r).enqueue("你好，世界。", tenant="a").request_id
    c = Claimer(r)
    first = c.claim("w1", 1)[0]
    assert r.xpending(first.stream, GROUP)["pending"] == 1
    done = c.complete(first, rid, ok=True)
    assert (done.done, done.segments, done.finished) == (1, 2, False)
    assert r.xpending(first.stream, GROUP)["pending"] == 0
    assert r.xlen(first.stream) == 0, "finished entries are deleted"
    second = c.claim("w1", 1)[0]
    assert decode_segment(second.payload or b"").seq == 1
    assert c.complete(second, rid, ok=True).finished
    assert r.hget(keys.request(rid), "status") == b"done"


def test_completing_twice_counts_once(r: redis.Redis) -> None:
    rid = Producer(r).enqueue("你好，世界。", tenant="a").request_id
    c = Claimer(r)
    item = c.claim("w1", 1)[0]
    c.complete(item, rid, ok=True)
    again = c.complete(item, rid, ok=True)
    assert again.done == 1


def test_empty_queue_claims_nothing_and_tenant_leaves_active(r: redis.Redis, keys: Keys) -> None:
    Producer(r).enqueue("你好", tenant="a")
    c = Claimer(r)
    assert len(c.claim("w1", 5)) == 1
    assert c.claim("w1", 5) == []
    assert r.llen(keys.active()) == 0 and r.llen(keys.fresh()) == 0
    assert not r.sismember(keys.active_set(), "a")


def test_counter_drift_is_repaired(r: redis.Redis, keys: Keys) -> None:
    Producer(r).enqueue("你好", tenant="a")
    r.delete(keys.queue("a", "rt"))  # someone deleted the stream by hand
    c = Claimer(r)
    assert c.claim("w1", 5) == []
    assert r.hget(keys.depth(), "a") is None
    Producer(r).enqueue("再见", tenant="a")
    assert len(c.claim("w1", 5)) == 1


def test_wait_for_work_wakes_on_enqueue(r: redis.Redis) -> None:
    waker = ListWaker(r, {"s0": Keys().wake()})
    assert waker.wait(0.05) is None
    Producer(r).enqueue("你好", tenant="a")
    assert waker.wait(1.0) == {"s0"}
