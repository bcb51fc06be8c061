"""Leases and reclaim on a real redis-server: expiry, extension, attempts, dead letters, hand-back."""

from __future__ import annotations

import time

import redis

from broker.claim import Claimer
from broker.producer import Producer
from chorus_client.keys import GROUP, Keys


def _one(r: redis.Redis, text: str = "你好") -> str:
    return Producer(r).enqueue(text, tenant="t").request_id


def test_claim_records_a_lease_and_completion_drops_it(r: redis.Redis, keys: Keys) -> None:
    rid = _one(r)
    c = Claimer(r)
    (item,) = c.claim("w1", 1, lease_ms=5000)
    score = r.zscore(keys.leases(), item.lease_member)
    assert score is not None and score > time.time() * 1000 + 4000
    c.complete(item, rid, ok=True)
    assert r.zcard(keys.leases()) == 0


def test_an_expired_lease_is_reclaimed_by_another_worker_with_the_next_attempt(r: redis.Redis, keys: Keys) -> None:
    rid = _one(r)
    c = Claimer(r)
    (item,) = c.claim("dead-worker", 1, lease_ms=50)
    assert item.attempt == 1
    assert c.reclaim("w2", lease_ms=50) == [], "not before the lease expires"
    time.sleep(0.08)
    (again,) = c.reclaim("w2", lease_ms=5000)
    assert (again.entry_id, again.attempt, again.exhausted) == (item.entry_id, 2, False)
    assert again.request_id == rid and again.tenant == "t" and again.lane == "rt"
    pending = r.xpending_range(item.stream, GROUP, "-", "+", 10)
    assert pending[0]["consumer"] == b"w2" and pending[0]["times_delivered"] == 2
    done = c.complete(again, rid, ok=True)
    assert done.finished and r.zcard(keys.leases()) == 0
    assert r.hget(keys.drr(), "t:f") == b"0", "the tenant's in-flight count settles once"


def test_extending_keeps_the_lease_and_a_lost_lease_is_not_taken_back(r: redis.Redis, keys: Keys) -> None:
    _one(r)
    c = Claimer(r)
    (item,) = c.claim("w1", 1, lease_ms=60)
    time.sleep(0.04)
    assert c.extend("w1", [item], lease_ms=60) == [True]
    time.sleep(0.04)
    assert c.reclaim("w2", lease_ms=60) == [], "extended in time"
    time.sleep(0.08)
    assert len(c.reclaim("w2", lease_ms=5000)) == 1
    assert c.extend("w1", [item], lease_ms=60) == [False], "w2 owns it now"
    assert r.zscore(keys.leases(), item.lease_member) > time.time() * 1000 + 4000  # type: ignore[operator]
    c.complete(item, item.request_id, ok=True)
    assert c.extend("w2", [item], lease_ms=60) == [None], "completed: nothing to extend"


def test_past_max_attempts_the_segment_comes_back_exhausted(r: redis.Redis) -> None:
    _one(r)
    c = Claimer(r)
    c.claim("w0", 1, lease_ms=1)
    for attempt in (2, 3):
        time.sleep(0.01)
        (item,) = c.reclaim(f"w{attempt}", lease_ms=1, max_attempts=3)
        assert (item.attempt, item.exhausted) == (attempt, False)
    time.sleep(0.01)
    (last,) = c.reclaim("w4", lease_ms=1000, max_attempts=3)
    assert last.exhausted and last.attempt == 4


def test_an_entry_completed_meanwhile_is_not_reclaimed(r: redis.Redis, keys: Keys) -> None:
    rid = _one(r)
    c = Claimer(r)
    (item,) = c.claim("w1", 1, lease_ms=1)
    r.xack(item.stream, GROUP, item.entry_id)  # acknowledged behind the lease's back
    time.sleep(0.01)
    assert c.reclaim("w2") == []
    assert r.zcard(keys.leases()) == 0
    assert rid


def test_release_hands_unserved_entries_back_at_once(r: redis.Redis) -> None:
    _one(r, "你好，世界。")
    c = Claimer(r)
    items = c.claim("stopping", 2, lease_ms=60_000)
    c.release(items[1:])
    (again,) = c.reclaim("w2", lease_ms=60_000)
    assert again.entry_id == items[1].entry_id
