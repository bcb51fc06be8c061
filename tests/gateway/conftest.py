"""Fixtures of the gateway tests: the gateway as a real uvicorn process, real Redis, real worker processes."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator

import pytest
import redis

from chorus.launch import start_gateway
from chorus.testing import run_paced_worker
from gateway.auth import ApiKeys

METRICS_TOKEN = "test-metrics-token"


@pytest.fixture(scope="module")
def stack(redis_server: object) -> Iterator[dict[str, object]]:
    url = redis_server.url  # type: ignore[attr-defined]
    r = redis.Redis.from_url(url)
    r.flushall()
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=run_paced_worker, args=(url, f"gw{i}", 6, 0.02, 2.0), daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    gateway = start_gateway(url, env={"CHORUS_METRICS_TOKEN": METRICS_TOKEN}, workers=2)
    base = gateway.base
    api = ApiKeys(r)
    key_a, _ = api.add("alice", "tests")
    key_b, _ = api.add("bob", "tests")
    yield {"base": base, "a": key_a, "b": key_b, "r": r, "metrics_token": METRICS_TOKEN}
    gateway.stop()
    for w in workers:
        w.kill()
        w.join(10)
    r.close()
