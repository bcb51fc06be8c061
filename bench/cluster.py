"""chorus on one redis-server against a real Redis Cluster (3 masters, 3 replicas): throughput, first
frame, and how long a master's kill -9 stops the service.

Everything in one run on this machine, so the ratios compare: null-backend workers, one shard
(``{s0}``: the queue lives on one master; audio streams spread over all three). With
``--durability replica`` every write also waits for a replica (WAIT).

    .venv/bin/python -m bench.cluster [--throughput 5000] [--latency 300] [--workers 2] [--durability none]

On 2 cores the cluster's six redis-servers, the workers and the producer share the CPU, so this
measures the cost of the cluster path (routing, MOVED-free steady state, WAIT), not the capacity
that more shards on more machines add.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial

import redis
from redis.crc import key_slot

from bench.common import pct, throughput
from broker.producer import Producer
from chorus.testing import null_engine, paced_config, paced_engine, start_workers, stop_processes, wait_for_workers
from chorus_client.constants import Durability
from chorus_client.keys import Keys
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedCluster, EmbeddedRedis
from workers.worker import WorkerConfig


def first_frame(r: redis.Redis, n: int, durability: Durability) -> list[float]:
    producer, out = Producer(r, durability=durability), []
    for _ in range(n):
        t0 = time.perf_counter()
        rid = producer.enqueue("你好", tenant="lat").request_id
        next(iter(Subscriber(r).frames(rid, timeout_s=10)))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(url: str, args: argparse.Namespace, durability: Durability) -> tuple[float, float, list[float]]:
    r = sync_client(RedisSettings.from_dsn(url))
    config = WorkerConfig(claim_count=8, idle_wait_s=1.0, durability=durability)
    procs = start_workers(url, args.workers, null_engine, config, prefix="bench-")
    try:
        wait_for_workers(r, Keys(), args.workers, procs=procs)
        first_frame(r, 20, durability)  # warm the scripts and connections
        lat = first_frame(r, args.latency, durability)
        e2e, enq = throughput(r, args.throughput, durability)
        return e2e, enq, lat
    finally:
        stop_processes(procs)


def failover_gap(cluster: EmbeddedCluster, durability: Durability) -> tuple[float, float]:
    """kill -9 the shard's master while requests flow: (seconds until the replica is master, seconds
    from the kill until a request enqueued after it is heard)."""
    r = sync_client(RedisSettings.from_dsn(cluster.url))
    os.environ["CHORUS_DURABILITY"] = durability.value  # the worker processes read it
    procs = start_workers(cluster.url, 1, partial(paced_engine, 2, 0.005), paced_config(5.0), prefix="fo-")
    try:
        wait_for_workers(r, Keys(), 1, procs=procs)
        stop = threading.Event()

        def flow() -> None:  # background load during the kill
            p = Producer(sync_client(RedisSettings.from_dsn(cluster.url)), durability=durability)
            while not stop.is_set():
                try:
                    p.enqueue("你好。", tenant="flow", priority="batch")
                except Exception:
                    time.sleep(0.05)

        loader = threading.Thread(target=flow, daemon=True)
        loader.start()
        time.sleep(1.0)
        old = cluster.master_of(key_slot(b"{s0}"))
        t0 = time.perf_counter()
        cluster.kill(old)
        cluster.failover_wait(old, deadline_s=30)
        promoted = time.perf_counter() - t0
        if durability is Durability.REPLICA:
            cluster.restart(old)  # durable writes need a replica again
        heard = _first_heard(lambda: sync_client(RedisSettings.from_dsn(cluster.url)), durability) - t0
        stop.set()
        loader.join(5)
        return promoted, heard
    finally:
        os.environ.pop("CHORUS_DURABILITY", None)
        stop_processes(procs)


def _first_heard(client: Callable[[], redis.Redis], durability: Durability) -> float:
    """The perf_counter time at which a request, retried until accepted, is first heard."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        try:
            r = client()
            rid = Producer(r, durability=durability).enqueue("你好。", tenant="probe").request_id
            next(iter(Subscriber(r).frames(rid, timeout_s=30)))
            return time.perf_counter()
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("no request heard within 60 s of the kill")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--throughput", type=int, default=5000)
    ap.add_argument("--latency", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--durability", choices=[d.value for d in Durability], default="none")
    args = ap.parse_args()
    durability = Durability(args.durability)
    rows = []
    with EmbeddedRedis() as server:
        rows.append(("one redis-server", *run(server.url, args, Durability.NONE)))
    with EmbeddedCluster() as cluster:
        rows.append((f"cluster 3+3, durability {durability}", *run(cluster.url, args, durability)))
        if durability is not Durability.NONE:
            rows.append(("cluster 3+3, durability none", *run(cluster.url, args, Durability.NONE)))
        promoted, heard = failover_gap(cluster, durability)
    base = rows[0]
    print(f"{args.workers} null workers claiming 8; {args.throughput} segments; {args.latency} first frames")
    print(f"{'':>36} {'seg/s e2e':>10} {'ratio':>6} {'enqueue seg/s':>14} {'p50 ms':>7} {'p99 ms':>7} {'mean':>6}")
    for label, e2e, enq, lat in rows:
        print(
            f"{label:>36} {e2e:>10,.0f} {e2e / base[1]:>5.2f}x {enq:>14,.0f} {pct(lat, 50):>7.2f} "
            f"{pct(lat, 99):>7.2f} {statistics.fmean(lat):>6.2f}"
        )
    print(f"kill -9 of the shard's master under load: replica promoted after {promoted:.2f} s; "
          f"a new request heard {heard:.2f} s after the kill (durability {durability})")  # fmt: skip


if __name__ == "__main__":
    main()
