"""Tenant policies in Redis: validation, update, default policy, and what enqueue makes of them."""

from __future__ import annotations

import asyncio

import pytest
import redis

from broker.policy import BUILTIN_DEFAULT, DefaultPolicy, TenantPolicy
from broker.producer import AsyncProducer, Producer
from broker.tenants import Tenants
from chorus_client.keys import LANES, Keys
from shared.config import RedisSettings
from shared.connection import async_client
from shared.errors import ConfigError, LaneNotAllowed, QueueFull, RequestTooLarge, UnknownTenant

TEXT = "你好，世界！今天天气很好，我们一起去公园散步吧。"  # two segments


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight": 0},
        {"weight": 1001},
        {"weight": 1.5},
        {"max_queued": -1},
        {"max_inflight": -2},
        {"lanes": ()},
        {"lanes": ("rt", "urgent")},
        {"weight": True},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TenantPolicy(**kwargs)  # type: ignore[arg-type]


def test_lanes_are_kept_in_priority_order() -> None:
    assert TenantPolicy(lanes=("batch", "rt")).lanes == ("rt", "batch")


def test_set_get_update_delete(r: redis.Redis) -> None:
    t = Tenants(r)
    assert t.get("acme") is None
    assert t.effective("acme") == (BUILTIN_DEFAULT.policy, False)
    t.set("acme", TenantPolicy(weight=3, max_queued=50))
    assert t.get("acme") == TenantPolicy(weight=3, max_queued=50)
    t.update("acme", max_inflight=4)
    assert t.get("acme") == TenantPolicy(weight=3, max_queued=50, max_inflight=4)
    t.update("newco", weight=2)
    assert t.get("newco") == TenantPolicy(weight=2)
    assert list(t.all()) == ["acme", "newco"]
    assert t.delete("acme") is True and t.get("acme") is None
    assert t.delete("acme") is False


def test_invalid_tenant_name_is_refused(r: redis.Redis) -> None:
    with pytest.raises(UnknownTenant):
        Tenants(r).set("no spaces", TenantPolicy())


def test_default_policy_round_trips_and_applies_to_unconfigured_tenants(r: redis.Redis) -> None:
    t = Tenants(r)
    t.set_default(DefaultPolicy(reject=False, policy=TenantPolicy(weight=2, max_queued=1)))
    assert t.default().policy.weight == 2
    Producer(r).enqueue("你好", tenant="anyone")
    with pytest.raises(QueueFull):
        Producer(r).enqueue("你好", tenant="anyone")
    assert "*" not in t.all()


def test_reject_default_refuses_unknown_tenants_but_serves_configured_ones(r: redis.Redis, keys: Keys) -> None:
    t = Tenants(r)
    t.set_default(DefaultPolicy(reject=True))
    with pytest.raises(UnknownTenant, match="default policy rejects"):
        Producer(r).enqueue("你好", tenant="stranger")
    assert r.dbsize() == 1, "nothing but the tenants hash exists"
    t.set("friend", TenantPolicy())
    assert Producer(r).enqueue("你好", tenant="friend").segments == 1


def test_queue_full_is_atomic_and_says_limit_and_retry(r: redis.Redis, keys: Keys) -> None:
    Tenants(r).set("acme", TenantPolicy(max_queued=3))
    p = Producer(r)
    p.enqueue(TEXT, tenant="acme")  # 2 queued
    before = {k: r.type(k) for k in r.keys("*")}
    depth_before = r.hgetall(keys.depth())
    with pytest.raises(QueueFull) as info:
        p.enqueue(TEXT, tenant="acme")  # 2 + 2 > 3
    err = info.value
    assert (err.tenant, err.limit, err.queued, err.requested) == ("acme", 3, 2, 2)
    assert "acme" in str(err) and "limit 3" in str(err) and "nothing was enqueued" in str(err)
    assert err.retry_after_s is None, "nothing was served in the last minute: no honest estimate"
    assert {k: r.type(k) for k in r.keys("*")} == before, "no request hash, audio stream or entry left behind"
    assert r.hgetall(keys.depth()) == depth_before
    assert p.enqueue("你好", tenant="acme").segments == 1, "a request that fits still goes in"


def test_a_request_larger_than_the_cap_is_refused_as_never_fitting(r: redis.Redis, keys: Keys) -> None:
    Tenants(r, keys).set("acme", TenantPolicy(max_queued=2))
    before = sorted(r.keys("*"))
    with pytest.raises(RequestTooLarge, match="can never fit") as info:
        Producer(r).enqueue(["一", "二", "三"], tenant="acme")
    assert (info.value.limit, info.value.requested) == (2, 3)
    assert sorted(r.keys("*")) == before, "nothing was written"
    Producer(r).enqueue(["一", "二"], tenant="acme")  # one that fits still goes in


def test_queue_full_retry_after_comes_from_the_service_rate(r: redis.Redis, keys: Keys) -> None:
    from broker.claim import Claimer

    Tenants(r).set("acme", TenantPolicy(max_queued=2))
    p, c = Producer(r), Claimer(r)
    for _ in range(2):
        rid = p.enqueue("你好", tenant="acme").request_id
        (item,) = c.claim("w", 1)
        c.complete(item, rid, ok=True, measured_us=1000)
    p.enqueue(TEXT, tenant="acme")
    with pytest.raises(QueueFull) as info:
        p.enqueue(TEXT, tenant="acme")
    # two segments served in the last ~minute: about 1/30 per second, two over the limit
    assert info.value.retry_after_s is not None and 30 <= info.value.retry_after_s <= 70


def test_async_producer_raises_the_same_errors(redis_url: str, r: redis.Redis) -> None:
    Tenants(r).set("acme", TenantPolicy(max_queued=1, lanes=("batch",)))

    async def go() -> None:
        client = async_client(RedisSettings.from_dsn(redis_url))
        p = AsyncProducer(client)
        with pytest.raises(LaneNotAllowed):
            await p.enqueue("你好", tenant="acme")
        await p.enqueue("你好", tenant="acme", priority="batch")
        with pytest.raises(QueueFull):
            await p.enqueue("你好", tenant="acme", priority="batch")
        await client.aclose()

    asyncio.run(go())


def test_lanes_not_allowed_are_refused_and_rt_falls_back_to_interactive(r: redis.Redis, keys: Keys) -> None:
    t = Tenants(r)
    t.set("bulk", TenantPolicy(lanes=("batch",)))
    with pytest.raises(LaneNotAllowed) as info:
        Producer(r).enqueue(TEXT, tenant="bulk")
    assert info.value.allowed == ["batch"] and info.value.lane in ("rt", "interactive")
    assert not r.exists(keys.queue("bulk", "batch"))
    t.set("plain", TenantPolicy(lanes=("interactive", "batch")))
    Producer(r).enqueue(TEXT, tenant="plain")
    assert not r.exists(keys.queue("plain", "rt"))
    assert r.xlen(keys.queue("plain", "interactive")) == 2


def test_builtin_default_is_the_one_the_scripts_use(r: redis.Redis, keys: Keys) -> None:
    # the Lua prelude is filled from BUILTIN_DEFAULT: its queue cap is the one enqueue enforces
    assert BUILTIN_DEFAULT.policy.lanes == LANES and not BUILTIN_DEFAULT.reject
    r.hset(keys.depth(), "acme", BUILTIN_DEFAULT.policy.max_queued)  # pretend the queue is at the cap
    with pytest.raises(QueueFull) as info:
        Producer(r).enqueue("你好", tenant="acme")
    assert info.value.limit == BUILTIN_DEFAULT.policy.max_queued
