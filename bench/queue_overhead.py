"""Queue overhead with a null backend: enqueue -> first frame at the subscriber, and throughput.

Baseline, run in the same process against the same server: the bare Redis round
trip the queue path is built from (XADD -> XREADGROUP -> XADD -> XREAD).

    .venv/bin/python -m bench.queue_overhead [--requests 2000] [--throughput 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import redis

from bench.common import summary, throughput
from broker.producer import Producer
from chorus.testing import null_engine, start_workers, stop_processes, wait_for_workers
from chorus_client.keys import Keys
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis
from workers.worker import WorkerConfig


def bare_round_trip(r: redis.Redis, n: int) -> list[float]:
    r.delete("bench:q", "bench:a")
    r.xgroup_create("bench:q", "g", id="0", mkstream=True)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r.xadd("bench:q", {"p": b"x" * 64})
        ((_, entries),) = r.xreadgroup("g", "c", {"bench:q": ">"}, count=1)
        r.xack("bench:q", "g", entries[0][0])
        r.xadd("bench:a", {"f": b"y" * 256})
        r.xread({"bench:a": "0-0"}, count=1)
        out.append((time.perf_counter() - t0) * 1000)
        r.delete("bench:a")
    return out


def first_frame_latency(r: redis.Redis, n: int) -> list[float]:
    producer, keys, out = Producer(r), Keys(), []
    for _ in range(n):
        t0 = time.perf_counter()
        rid = producer.enqueue("你好", tenant="bench").request_id
        audio, last = keys.audio(rid), "0"
        while True:
            resp = r.xread({audio: last}, block=5000)
            if not resp:
                raise RuntimeError("no frame within 5 s")
            done = False
            for entry_id, fields in resp[0][1]:
                last = entry_id
                if b"audio" in fields[b"f"][:24]:
                    done = True
            if done:
                break
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--throughput", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--claim", type=int, default=8)
    args = ap.parse_args()
    with EmbeddedRedis() as server:
        r = sync_client(RedisSettings.from_dsn(server.url))
        print(f"redis-server {r.info()['redis_version']} on loopback; {args.workers} null workers")
        base = bare_round_trip(r, args.requests)
        procs = start_workers(server.url, 1, null_engine, WorkerConfig(claim_count=1), prefix="null-")
        wait_for_workers(r, Keys(), 1, procs=procs)
        first_frame_latency(r, 100)  # warm-up
        lat = first_frame_latency(r, args.requests)
        stop_processes(procs)
        print(f"bare XADD->XREADGROUP->XADD->XREAD: {summary(base)}")
        print(f"chorus enqueue -> first frame:      {summary(lat)}")
        print(f"ratio p50 chorus / bare: {sorted(lat)[len(lat) // 2] / sorted(base)[len(base) // 2]:.1f}x")
        procs = start_workers(
            server.url, args.workers, null_engine, WorkerConfig(claim_count=args.claim), prefix="null-"
        )
        wait_for_workers(r, Keys(), args.workers, procs=procs)
        rate, enqueue_rate = throughput(r, args.throughput)
        print(f"  enqueue alone: {enqueue_rate:,.0f} segments/s from one producer process")
        print(f"throughput: {rate:,.0f} segments/s end to end ({args.workers} workers, claim {args.claim})")
        stop_processes(procs)


if __name__ == "__main__":
    main()
