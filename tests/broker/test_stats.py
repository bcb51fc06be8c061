"""Statistics per tenant and lane on a real redis-server."""

from __future__ import annotations

import redis

from broker.claim import Claimer
from broker.policy import TenantPolicy
from broker.producer import Producer
from broker.stats import Stats
from broker.tenants import Tenants
from chorus_client.keys import Keys
from chorus_client.rates import current_bucket


def test_snapshot_shows_queued_inflight_served_and_share(r: redis.Redis, keys: Keys) -> None:
    Tenants(r).set("a", TenantPolicy(weight=3))
    p, c = Producer(r), Claimer(r)
    for _ in range(3):
        p.enqueue("你好", tenant="a")
        p.enqueue("你好", tenant="b", priority="batch")
    done = 0
    for item in c.claim("w", 6)[:4]:
        c.complete(item, item.request_id, ok=True, measured_us=30_000 if item.tenant == "a" else 10_000)
        done += 1
    c.claim("w", 1)  # one stays in flight
    snap = {s.tenant: s for s in Stats(r).snapshot()}
    assert set(snap) == {"a", "b"}
    a, b = snap["a"], snap["b"]
    assert a.configured and a.policy.weight == 3 and not b.configured
    served = a.recent + b.recent
    assert served == done == a.lanes["rt"].served + b.lanes["batch"].served
    assert a.queued + b.queued + a.inflight + b.inflight == 6 - done
    assert a.inflight + b.inflight == 2, "the claimed-but-not-completed entries, from XPENDING"
    assert abs(a.share + b.share - 1) < 1e-9
    expected_a = a.recent_s / (a.recent_s + b.recent_s)
    assert abs(a.share - expected_a) < 1e-9 and a.recent_s == a.lanes["rt"].served_s


def test_old_buckets_fall_out_of_the_last_minute(r: redis.Redis, keys: Keys) -> None:
    old = current_bucket() - 10  # 100 s ago
    r.hset(keys.busy(old), mapping={"z:batch:n": 5, "z:batch:us": 5_000_000})
    recent, span = Stats(r).recent()
    assert recent == {} and 60 <= span <= 70
    assert Stats(r).service_rate("z") == 0


def test_service_rate_counts_the_tenants_own_segments(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.busy(current_bucket()), mapping={"z:rt:n": 6, "z:batch:n": 6, "zz:rt:n": 100, "z:rt:us": 1})
    rate = Stats(r).service_rate("z")
    assert 12 / 70 <= rate <= 12 / 60
