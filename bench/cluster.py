"""chorus on one redis-server against a real Redis Cluster (3 masters, 3 replicas): throughput with one
shard and with ``--shards``, first frame, cross-shard fairness, an idle worker's wake-up for work on
any shard, and how long a master's kill -9 stops the service.

Everything in one run on this machine, so the ratios compare: null-backend workers; one shard
(``{s0}``: the queue lives on one master; audio streams spread over all three), then ``--shards``
shards spread over the masters. With ``--durability replica`` every write also waits for a
replica (WAIT).

* fairness: tenants of weights 3, 2 and 1, each alone on its own shard, flooded; then a fourth
  tenant of weight 1 crowds the third one's shard. Shares of worker time over ``--fair-s`` seconds
  (served counters), against weight / total weight (target within 5 %).
* wake-up: an idle worker (it would sleep 30 s between looks) and a one-segment request to a tenant
  on a random shard, ``--wakeups`` times: enqueue to first frame heard, on one server with the same
  shards (one BLPOP over all wake lists) and on the cluster (a blocking pop per shard).

    .venv/bin/python -m bench.cluster [--throughput 5000] [--latency 300] [--workers 2] [--shards 6]
        [--fair-s 8] [--wakeups 200] [--durability none]

On 2 cores the cluster's six redis-servers, the workers and the producer share the CPU, so this
measures the cost of the cluster path (routing, MOVED-free steady state, WAIT), not the capacity
that more shards on more machines add.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial

import redis
from redis.crc import key_slot

from bench.common import pct, throughput
from broker.placement import Shards
from broker.policy import TenantPolicy
from broker.producer import Producer
from broker.tenants import Tenants
from chorus.testing import (
    null_engine,
    paced_config,
    paced_engine,
    run_worker,
    sleep_engine,
    start_workers,
    stop_processes,
    wait_for_workers,
)
from chorus_client.constants import Durability
from chorus_client.keys import Keys, home_shard
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedCluster, EmbeddedRedis
from workers.worker import Worker, WorkerConfig


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


def fairness(url: str, args: argparse.Namespace) -> list[tuple[str, dict[str, float]]]:
    """(case, {tenant: measured share / target share}) for tenants placed on different shards."""
    r = sync_client(RedisSettings.from_dsn(url))
    config = WorkerConfig(claim_count=1, idle_wait_s=1.0)
    procs = start_workers(url, args.workers, partial(sleep_engine, 1.0), config, prefix="fair-")
    cases = [
        ("3:2:1, one tenant per shard", {"fa": (3, "s0"), "fb": (2, "s1"), "fc": (1, "s2")}),
        ("3:2:1:1, fd crowds fc's shard", {"ga": (3, "s0"), "gb": (2, "s1"), "gc": (1, "s2"), "gd": (1, "s2")}),
    ]
    out = []
    try:
        wait_for_workers(r, Keys(), args.workers, procs=procs)
        for label, placed in cases:
            admin, producer = Tenants(r), Producer(r)
            for tenant, (weight, shard) in placed.items():
                admin.set(tenant, TenantPolicy(weight=weight, shard=shard, max_queued=0))
            for _ in range(300):  # ~4 ms of "synthesis" per segment: far more than the window takes
                for tenant in placed:
                    producer.enqueue(["你好世界"] * 8, tenant=tenant, priority="batch")
            time.sleep(2.0)  # every shard busy, the picker settled
            before = _served_us(r, placed)
            time.sleep(args.fair_s)
            after = _served_us(r, placed)
            total_w = sum(w for w, _ in placed.values())
            got = {t: after[t] - before[t] for t in placed}
            total = sum(got.values()) or 1
            out.append((label, {t: (got[t] / total) / (w / total_w) for t, (w, _) in placed.items()}))
            for tenant in placed:  # drop the rest of the flood before the next case
                admin.delete(tenant)
            _cancel_all(r, placed)
    finally:
        stop_processes(procs)
    return out


def _served_us(r: redis.Redis, placed: dict[str, tuple[int, str]]) -> dict[str, int]:
    out = {}
    for tenant, (_, shard) in placed.items():
        served = r.hgetall(Keys().of_shard(shard).served())
        out[tenant] = sum(
            int(v) for k, v in served.items() if k.decode().startswith(f"{tenant}:") and k.endswith(b":us")
        )
    return out


def _cancel_all(r: redis.Redis, placed: dict[str, tuple[int, str]]) -> None:
    """Empty the tenants' lane streams and counters (the bench's flood is not worth serving)."""
    for tenant, (_, shard) in placed.items():
        k = Keys().of_shard(shard)
        for lane in ("rt", "interactive", "batch"):
            r.delete(k.queue(tenant, lane))
        r.hdel(k.depth(), tenant, f"{tenant}:rt", f"{tenant}:interactive", f"{tenant}:batch")


WOKE_KEY = "bench:{wake}:woke"
"""Where :class:`WakeTimedWorker` notes when its waits for work returned (CLOCK_MONOTONIC, shared by
every process on the machine)."""


class WakeTimedWorker(Worker):
    """A worker that notes when each wait for work returns: the wake-up, without the claim and the
    synthesis after it."""

    def wait_for_work(self, timeout_s: float) -> None:
        super().wait_for_work(timeout_s)
        pipe = self._r.pipeline(transaction=False)
        pipe.rpush(WOKE_KEY, repr(time.monotonic()))
        pipe.expire(WOKE_KEY, 60)
        pipe.execute()


def run_wake_timed(url: str) -> None:
    run_worker(url, "wake-timed", null_engine, WorkerConfig(idle_wait_s=30.0), worker_class=WakeTimedWorker)


def wakeups(url: str, n: int) -> tuple[list[float], list[float]]:
    """(milliseconds from the enqueue to the worker's wait returning, to the first frame heard) for a
    request to a tenant on a random shard while the only worker is idle (its timed look comes every
    30 s: only a wake-up explains a fast answer)."""
    r = sync_client(RedisSettings.from_dsn(url))
    count = Shards(r).count()
    tenants = {home_shard(f"w{i}", count): f"w{i}" for i in range(1000)}
    proc = mp.get_context("spawn").Process(target=run_wake_timed, args=(url,), daemon=True)
    proc.start()
    woke, heard = [], []
    try:
        wait_for_workers(r, Keys(), 1, procs=[proc])
        producer = Producer(r)
        rng = random.Random(7)
        names = sorted(tenants.values())
        for i in range(n + 10):
            time.sleep(0.05)  # the worker is idle again, blocked on the wake lists
            r.delete(WOKE_KEY)
            t0 = time.monotonic()
            rid = producer.enqueue("你好", tenant=rng.choice(names)).request_id
            next(iter(Subscriber(r).frames(rid, timeout_s=10)))
            t1 = time.monotonic()
            woken_at = r.lrange(WOKE_KEY, 0, -1)
            if i >= 10 and woken_at:  # the first ones warm connections and scripts
                woke.append((float(woken_at[0]) - t0) * 1000)
                heard.append((t1 - t0) * 1000)
    finally:
        stop_processes([proc])
    return woke, heard


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
    ap.add_argument("--shards", type=int, default=6)
    ap.add_argument("--fair-s", type=float, default=8.0)
    ap.add_argument("--wakeups", type=int, default=200)
    ap.add_argument("--durability", choices=[d.value for d in Durability], default="none")
    args = ap.parse_args()
    durability = Durability(args.durability)
    rows = []
    with EmbeddedRedis() as server:
        rows.append(("one redis-server, 1 shard", *run(server.url, args, Durability.NONE)))
        Shards(sync_client(RedisSettings.from_dsn(server.url))).grow(args.shards)
        rows.append((f"one redis-server, {args.shards} shards", *run(server.url, args, Durability.NONE)))
        wake_one = wakeups(server.url, args.wakeups)
    with EmbeddedCluster() as cluster:
        rows.append((f"cluster 3+3, 1 shard, durability {durability}", *run(cluster.url, args, durability)))
        if durability is not Durability.NONE:
            rows.append(("cluster 3+3, 1 shard, durability none", *run(cluster.url, args, Durability.NONE)))
        Shards(sync_client(RedisSettings.from_dsn(cluster.url))).grow(args.shards)
        balanced = Shards(sync_client(RedisSettings.from_dsn(cluster.url))).balance()
        rows.append((f"cluster 3+3, {args.shards} shards", *run(cluster.url, args, Durability.NONE)))
        fair = fairness(cluster.url, args)
        wake_cluster = wakeups(cluster.url, args.wakeups)
        promoted, heard = failover_gap(cluster, durability)
    base = rows[0]
    print(f"{args.workers} null workers claiming 8; {args.throughput} segments; {args.latency} first frames")
    print(f"{'':>40} {'seg/s e2e':>10} {'ratio':>6} {'enqueue seg/s':>14} {'p50 ms':>7} {'p99 ms':>7} {'mean':>6}")
    for label, e2e, enq, lat in rows:
        print(
            f"{label:>40} {e2e:>10,.0f} {e2e / base[1]:>5.2f}x {enq:>14,.0f} {pct(lat, 50):>7.2f} "
            f"{pct(lat, 99):>7.2f} {statistics.fmean(lat):>6.2f}"
        )
    print(f"kill -9 of the shard's master under load: replica promoted after {promoted:.2f} s; "
          f"a new request heard {heard:.2f} s after the kill (durability {durability})")  # fmt: skip
    print(f"cross-shard fairness on the cluster ({args.workers} workers, {args.fair_s:g} s): share / weight share")
    for label, ratios in fair:
        cells = "  ".join(f"{t} {v:.3f}" for t, v in ratios.items())
        worst = max(abs(v - 1) for v in ratios.values())
        print(f"  {label:32} {cells}   worst {worst:.1%} (target 5 %)")
    print(f"cluster shards balanced over the masters first: {len(balanced)} slots moved")
    print(f"an idle worker and a request on a random one of {args.shards} shards (target: wake-up p99 <= 5 ms)")
    for label, (woke, heard_ms) in (
        (f"one redis-server, {args.shards} shards", wake_one),
        (f"cluster 3+3, {args.shards} shards", wake_cluster),
    ):
        print(
            f"  {label:28} wake-up p50 {pct(woke, 50):.2f} ms  p99 {pct(woke, 99):.2f} ms  max {max(woke):.2f} ms; "
            f"first frame p50 {pct(heard_ms, 50):.2f} ms  p99 {pct(heard_ms, 99):.2f} ms (n={len(woke)})"
        )


if __name__ == "__main__":
    main()
