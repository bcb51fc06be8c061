"""Waiting for work on any shard: one BLPOP over every wake list, or one blocking thread per shard."""

from __future__ import annotations

import time

import redis

from broker.wake import ListWaker, ThreadWaker
from chorus_client.keys import Keys
from shared.config import RedisSettings
from shared.connection import sync_client


def wake_keys(n: int) -> dict[str, str]:
    return {f"s{i}": Keys().of_shard(f"s{i}").wake() for i in range(n)}


def test_one_blpop_names_the_shard_that_has_work(r: redis.Redis) -> None:
    waker = ListWaker(r, wake_keys(3))
    assert waker.wait(0.05) is None
    r.rpush(wake_keys(3)["s2"], "1")
    assert waker.wait(1.0) == {"s2"}
    assert r.llen(wake_keys(3)["s2"]) == 0  # the token is taken: one worker wakes, not all


def test_a_thread_per_shard_wakes_the_idle_worker_at_once(r: redis.Redis, redis_url: str) -> None:
    waker = ThreadWaker(sync_client(RedisSettings.from_dsn(redis_url)), wake_keys(3))
    try:
        assert waker.wait(0.1) is None
        t0 = time.monotonic()
        r.rpush(wake_keys(3)["s1"], "1")
        assert waker.wait(2.0) == {"s1"}
        assert time.monotonic() - t0 < 0.5
    finally:
        waker.close()


def test_a_token_that_arrives_while_the_worker_is_busy_is_left_for_another(r: redis.Redis, redis_url: str) -> None:
    keys = wake_keys(2)
    waker = ThreadWaker(sync_client(RedisSettings.from_dsn(redis_url)), keys)
    try:
        assert waker.wait(0.1) is None  # the threads were blocking; now the worker is busy
        r.rpush(keys["s0"], "1")  # a thread still inside its BLPOP pops it, sees busy, pushes it back
        time.sleep(0.3)
        assert r.llen(keys["s0"]) == 1
        assert waker.wait(2.0) == {"s0"}  # idle again: it is this worker's now
    finally:
        waker.close()
