"""Claim cost as the number of active tenants grows: Redis time per claim stays flat.

For each N, N tenants have queued work and the scheduler is warmed up so that one
turn is one segment (every claim also recharges and rotates a tenant, the steady
state of DRR). Then M claims of one segment each: Redis' own time per call of the
claim script (INFO commandstats, EVALSHA) and the client's round trip.

    .venv/bin/python -m bench.claim_cost [--tenants 10,100,1000,10000] [--claims 5000]
"""

from __future__ import annotations

import argparse
import math
import time

import redis

from bench.common import pct
from broker.claim import Claimer
from broker.producer import Producer
from broker.scheduler import SCHEDULER
from chorus_client.keys import Keys
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis


def run(r: redis.Redis, n: int, claims: int) -> tuple[float, list[float]]:
    r.flushall()
    keys, p, c = Keys(), Producer(r), Claimer(r)
    r.hset(keys.drr(), mapping={"~rate": 1000, "~q": 2000, "~n": SCHEDULER.ewma, "~qt": int(time.time() * 1000)})
    per = max(2, math.ceil(claims * 1.2 / n))
    for i in range(n):
        p.enqueue(["你好"] * per, tenant=f"t{i}", priority="batch")
    assert r.scard(keys.active_set()) == n
    for _ in range(50):  # warm the script cache and the connection
        c.claim("warm", 1)
    r.config_resetstat()
    lat = []
    for _ in range(claims):
        t0 = time.perf_counter()
        got = c.claim("w", 1)
        lat.append((time.perf_counter() - t0) * 1e6)
        assert got, "ran out of work"
    stats = r.info("commandstats")["cmdstat_evalsha"]
    assert stats["calls"] == claims, stats
    return float(stats["usec_per_call"]), lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", default="10,100,1000,10000")
    ap.add_argument("--claims", type=int, default=5000)
    args = ap.parse_args()
    with EmbeddedRedis() as server:
        r = sync_client(RedisSettings.from_dsn(server.url))
        print(f"redis-server {r.info()['redis_version']}; {args.claims} claims of one segment per row")
        print(f"{'active tenants':>14} {'redis us/claim':>15} {'ratio':>6} {'client p50 us':>14} {'p99 us':>8}")
        base = None
        for n in (int(x) for x in args.tenants.split(",")):
            usec, lat = run(r, n, args.claims)
            base = base or usec
            print(f"{n:>14,} {usec:>15.1f} {usec / base:>5.2f}x {pct(lat, 50):>14.0f} {pct(lat, 99):>8.0f}")


if __name__ == "__main__":
    main()
