"""Shared helpers for the benchmarks: percentiles, end-to-end throughput. Workers and backends are in
:mod:`chorus.testing`."""

from __future__ import annotations

import statistics
import time

import redis

from broker.producer import Producer
from chorus_client.constants import Durability
from chorus_client.keys import Keys

MANY = "，".join(["你好"] * 10) + "。"
"""A request of 10 segments."""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(ms: list[float]) -> str:
    return (
        f"p50 {pct(ms, 50):.3f} ms  p90 {pct(ms, 90):.3f} ms  p99 {pct(ms, 99):.3f} ms  "
        f"mean {statistics.fmean(ms):.3f} ms  (n={len(ms)})"
    )


def throughput(r: redis.Redis, n: int, durability: Durability = Durability.NONE) -> tuple[float, float]:
    """(end-to-end segments/s, enqueue-alone segments/s): ``n`` segments in requests of 10 over 8
    tenants, enqueued by one producer, each request polled until done."""
    producer, keys = Producer(r, durability=durability), Keys()
    t0 = time.perf_counter()
    ids = [producer.enqueue(MANY, tenant=f"t{i % 8}").request_id for i in range(n // 10)]
    enq_s = time.perf_counter() - t0
    for rid in ids:
        while r.hget(keys.for_request(rid).request(rid), "status") != b"done":
            time.sleep(0.001)
    return n / (time.perf_counter() - t0), n / enq_s
