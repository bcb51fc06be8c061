"""Soak under chaos: many requests through worker processes that are kill -9'd and restarted meanwhile.

Three worker processes (near-null backend: one 100 ms frame after a few ms of
"synthesis", so a kill can land mid-segment) serve ``--requests`` requests of
two segments from four tenants. A chaos loop kill -9s a random worker every
``--kill-every`` seconds and starts a fresh one. Afterwards every request's
audio is read through the real Subscriber and classified:

  exactly once   every frame of every segment heard once, in order, end marker ok
  lost           never finished, or frames missing
  duplicated     a frame heard twice (the subscriber would have to let it through)

Also reported: segments synthesised more than once (reclaimed work, not heard
twice), recovery time after each kill (until every segment the victim held
was completed by others), and Redis memory per finished request.

    .venv/bin/python -m bench.soak [--requests 10000] [--workers 3] [--kill-every 2]

With ``--cluster`` it runs on a real Redis Cluster (3 masters, 3 replicas) with
``--shards`` shards (default 6) and durability ``replica``, and also kill -9s the
master of shard s0's slot once a third of the requests are enqueued (its replica
takes over; the old master comes back as a replica, since ``WAIT`` needs one):
reported is how long until the replica was master and until the producer's next
enqueue was accepted.

    .venv/bin/python -m bench.soak --cluster [--shards 6] [--requests 10000]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from functools import partial
from multiprocessing.process import BaseProcess

import redis
from redis.crc import key_slot

from bench.common import pct
from broker.placement import Shards
from broker.producer import Producer
from chorus.testing import paced_config, paced_engine, start_worker, wait_for_workers
from chorus_client.constants import FINISHED_AUDIO_TTL_S, FINISHED_REQUEST_TTL_S, Durability
from chorus_client.keys import GROUP, LANES, Keys
from chorus_client.protocol import AudioFrame, EndFrame, decode_frame
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedCluster, EmbeddedRedis
from shared.errors import ChorusError, RedisUnavailable

TENANTS = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]


class Chaos:
    def __init__(self, url: str, n: int, lease_s: float, chunk_s: float) -> None:
        self.url, self.engine, self.config = url, partial(paced_engine, 1, chunk_s), paced_config(lease_s)
        self.procs: dict[str, BaseProcess] = {}
        self.serial = 0
        for _ in range(n):
            self.spawn()
        self.kills = 0
        self.recoveries: list[float] = []

    def spawn(self) -> None:
        name = f"soak{self.serial}"
        self.serial += 1
        self.procs[name] = start_worker(self.url, name, self.engine, self.config, daemon=False)

    def held_by(self, r: redis.Redis, name: str) -> set[tuple[str, bytes]]:
        out = set()
        for tenant in TENANTS:
            keys = Keys().of_shard(Shards(r).locate(tenant))
            for lane in LANES:
                stream = keys.queue(tenant, lane)
                if r.exists(stream):
                    for p in r.xpending_range(stream, GROUP, "-", "+", 100, consumername=name):
                        out.add((stream, p["message_id"]))
        return out

    def watch_recovery(self, r: redis.Redis, held: set[tuple[str, bytes]], killed_at: float) -> None:
        while held:
            held = {(s, i) for s, i in held if r.xpending_range(s, GROUP, i, i, 1)}
            time.sleep(0.01)
        self.recoveries.append(time.monotonic() - killed_at)

    def loop(self, r: redis.Redis, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            name = random.choice(sorted(self.procs))
            proc = self.procs.pop(name)
            try:
                held = self.held_by(r, name)
            except (redis.RedisError, ChorusError):  # the master kill: kill the worker anyway
                held = set()
            os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
            killed_at = time.monotonic()
            proc.join()
            self.kills += 1
            try:
                r.zrem(Keys().workers(), name)  # the dead worker's heartbeat would linger for a while
            except (redis.RedisError, ChorusError):
                pass
            self.spawn()
            if held:
                threading.Thread(target=self.watch_recovery, args=(r, held, killed_at), daemon=True).start()

    def close(self) -> None:
        for p in self.procs.values():
            p.kill()
            p.join()


def classify(r: redis.Redis, rid: str) -> tuple[str, int]:
    """(outcome, segments synthesised more than once) for one finished request."""
    raw = [decode_frame(f[b"f"]) for _, f in r.xrange(Keys().audio(rid))]
    attempts = Counter((f.segment, f.attempt) for f in raw if isinstance(f, AudioFrame) and f.index == 0)
    redone = len({seg for seg, att in attempts if att > 1})
    try:
        frames = list(Subscriber(r).frames(rid, timeout_s=5))
    except ChorusError as exc:
        kinds = [(type(f).__name__, getattr(f, "segment", None), getattr(f, "attempt", None)) for f in raw]
        print(f"  lost {rid}: {exc}; request {r.hgetall(Keys().for_request(rid).request(rid))}; stream {kinds}")
        return "lost", redone
    heard = [(f.segment, f.index) for f in frames]
    if len(heard) != len(set(heard)):
        return "duplicated", redone
    end = [f for f in raw if isinstance(f, EndFrame)]
    if not end or end[-1].status != "ok" or sorted({s for s, _ in heard}) != [0, 1]:
        return "lost", redone
    return "exactly once", redone


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--kill-every", type=float, default=2.0)
    ap.add_argument("--lease", type=float, default=1.0)
    ap.add_argument("--chunk-ms", type=float, default=3.0)
    ap.add_argument("--cluster", action="store_true", help="a real Redis Cluster, with a master kill -9")
    ap.add_argument("--shards", type=int, default=6, help="shards on the cluster (default 6)")
    args = ap.parse_args()
    if args.cluster:
        os.environ["CHORUS_DURABILITY"] = Durability.REPLICA.value  # the worker processes read it
        with EmbeddedCluster() as cluster:
            r = sync_client(RedisSettings.from_dsn(cluster.url))
            Shards(r).grow(args.shards)
            soak(cluster.url, r, args, cluster)
    else:
        with EmbeddedRedis() as server:
            soak(server.url, sync_client(RedisSettings.from_dsn(server.url)), args, None)


FAILOVER: dict[str, float] = {}
"""What the master kill measured: seconds until the replica was master, and until an enqueue was accepted."""


def enqueue_all(r: redis.Redis, args: argparse.Namespace, cluster: EmbeddedCluster | None) -> list[str]:
    """Enqueue ``args.requests`` requests; on a cluster, kill -9 s0's master a third of the way in
    and retry each refused enqueue (an outage) until accepted."""
    durability = Durability.REPLICA if cluster is not None else Durability.NONE
    p, ids = Producer(r, durability=durability), []
    kill_at = args.requests // 3 if cluster is not None else -1
    killed_at, old = 0.0, None
    for i in range(args.requests):
        if i == kill_at and cluster is not None:
            old = cluster.master_of(key_slot(b"{s0}"))
            killed_at = time.monotonic()
            cluster.kill(old)
            threading.Thread(target=_failover, args=(cluster, old, killed_at), daemon=True).start()
        while True:
            try:
                ids.append(p.enqueue(["第一段。", "第二段。"], tenant=TENANTS[i % len(TENANTS)]).request_id)
                break
            except RedisUnavailable:
                time.sleep(0.05)
        if old is not None and "accepted" not in FAILOVER and TENANTS[i % len(TENANTS)] in _ON_S0:
            FAILOVER["accepted"] = time.monotonic() - killed_at
    return ids


_ON_S0: set[str] = set()


def _failover(cluster: EmbeddedCluster, old: object, killed_at: float) -> None:
    cluster.failover_wait(old, deadline_s=30)  # type: ignore[arg-type]
    FAILOVER["promoted"] = time.monotonic() - killed_at
    cluster.restart(old)  # type: ignore[arg-type]


def soak(url: str, r: redis.Redis, args: argparse.Namespace, cluster: EmbeddedCluster | None) -> None:
    _ON_S0.update(t for t in TENANTS if Shards(r).locate(t) == "s0")
    base_mem = 0 if cluster is not None else int(r.info("memory")["used_memory"])
    chaos = Chaos(url, args.workers, args.lease, args.chunk_ms / 1000)
    wait_for_workers(r, Keys(), args.workers, 60, procs=list(chaos.procs.values()))
    stop = threading.Event()
    t0 = time.monotonic()
    chaos_thread = threading.Thread(target=chaos.loop, args=(r, args.kill_every, stop), daemon=True)
    chaos_thread.start()
    ids = enqueue_all(r, args, cluster)
    keys = Keys()
    pending = list(ids)
    deadline = time.monotonic() + 30 + args.requests / 20
    while pending and time.monotonic() < deadline:
        pipe = r.pipeline(transaction=False)
        for rid in pending:
            pipe.hget(keys.for_request(rid).request(rid), "status")
        pending = [rid for rid, st in zip(pending, pipe.execute(), strict=True) if st not in (b"done", b"failed")]
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    stop.set()
    chaos_thread.join()
    time.sleep(0.5)
    chaos.close()
    outcomes: Counter[str] = Counter()
    redone = 0
    for rid in ids:
        outcome, again = classify(r, rid)
        outcomes[outcome] += 1
        redone += again
    rec = chaos.recoveries
    where = f"Redis Cluster 3+3, {args.shards} shards, durability replica" if cluster is not None else "redis-server"
    print(
        f"{where}; {args.requests} requests x 2 segments from {len(TENANTS)} tenants, {args.workers} "
        f"workers (one 100 ms frame after {args.chunk_ms:.0f} ms each), lease {args.lease:.1f} s"
    )
    if FAILOVER:
        print(
            f"kill -9 of s0's master after {args.requests // 3} enqueues: replica master after "
            f"{FAILOVER.get('promoted', float('nan')):.2f} s; the next enqueue to s0 accepted after "
            f"{FAILOVER.get('accepted', float('nan')):.2f} s"
        )
    print(
        f"finished in {elapsed:.1f} s with {chaos.kills} kill -9s (every {args.kill_every:.1f} s), "
        f"{len(pending)} unfinished at the deadline"
    )
    print(
        f"heard exactly once: {outcomes['exactly once']}   lost: {outcomes['lost']}   "
        f"duplicated: {outcomes['duplicated']}"
    )
    print(f"segments synthesised again after a kill (not heard twice): {redone}")
    if rec:
        print(
            f"recovery after a kill (victim's segments completed elsewhere): p50 {pct(rec, 50):.2f} s, "
            f"max {max(rec):.2f} s over {len(rec)} kills that held work"
        )
    if cluster is not None:
        return
    mem = int(r.info("memory")["used_memory"])
    sample = ids[: min(200, len(ids))]
    per_req = [
        int(r.memory_usage(keys.for_request(rid).request(rid)) or 0) + int(r.memory_usage(keys.audio(rid)) or 0)
        for rid in sample
    ]
    ttl = f"{FINISHED_REQUEST_TTL_S} s / {FINISHED_AUDIO_TTL_S} s"
    print(
        f"Redis memory: {(mem - base_mem) / len(ids):,.0f} bytes per finished request overall; request hash + "
        f"audio stream {statistics.fmean(per_req):,.0f} bytes (expire after {ttl})"
    )


if __name__ == "__main__":
    main()
