"""Fairness of the scheduler on real Redis with several worker processes and a controlled backend.

Each worker process runs the real ``Worker`` with :class:`chorus.testing.SleepBackend`,
which sleeps ``--ms-per-char`` per weighted character of the segment (every text here
is Chinese: one per character; the synthesis time is known and proportional to the
text, as with a real model), and records when it served which tenant. Shares of
worker time are measured from those records, over a window in which every tenant
still had queued work (saturated).

Scenarios:
  equal      tenants A, B, C with weights 3:2:1, all segments 30 characters
  unequal    the same weights; A's segments 90 characters, B's 30, C's 6
  light      a light tenant's time to first audio, idle system vs a heavy tenant
             with 10,000 segments queued (the heavy text cut as chorus cuts it)
  batch      one tenant floods interactive work and also has batch work queued

    .venv/bin/python -m bench.fairness [--workers 4] [--seconds 20] [--ms-per-char 1.0]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench.common import pct
from broker.claimed import Claimed
from broker.policy import TenantPolicy
from broker.producer import Producer
from broker.tenants import Tenants
from chorus.testing import run_worker, sleep_engine, stop_processes, wait_for_workers
from chorus_client.constants import HEARTBEAT_S
from chorus_client.keys import Keys
from chorus_client.segment import segment_text
from chorus_client.segment import weight as text_weight
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis
from workers.worker import Worker, WorkerConfig

WEIGHTS = {"A": 3, "B": 2, "C": 1}
PARAGRAPH = (
    "今天的天气非常好，阳光明媚，微风轻轻地吹过树梢。我们一起去公园散步吧，那里有很多美丽的花朵和高大的树木，"
    "孩子们在草地上奔跑嬉戏，老人们坐在长椅上聊天下棋。湖面上有几只白色的天鹅在悠闲地游来游去，"
    "远处的山峰在蓝天白云的映衬下显得格外壮观。傍晚的时候，夕阳把天空染成了橙红色，我们才依依不舍地回家。"
)


class RecordingWorker(Worker):
    """Records (tenant, lane, start, end) of every segment it serves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[tuple[str, str, float, float]] = []

    def serve(self, item: Claimed) -> None:
        t0 = time.time()
        super().serve(item)
        self.records.append((item.tenant, item.lane, t0, time.time()))


def _worker_main(url: str, name: str, ms_per_char: float, out: str, reserve: int) -> None:
    """Process target: a recording worker on the sleep backend; its records go to ``out`` when it stops."""
    config = WorkerConfig(idle_wait_s=0.5, reserve=reserve)
    worker = run_worker(url, name, partial(sleep_engine, ms_per_char), config, worker_class=RecordingWorker)
    assert isinstance(worker, RecordingWorker)
    Path(out).write_text(json.dumps(worker.records))


class Pool:
    """N recording worker processes; ``stop()`` returns their records."""

    def __init__(self, url: str, n: int, ms_per_char: float, reserve: int = 0) -> None:
        self._dir = tempfile.mkdtemp(prefix="chorus-fair-")
        ctx = mp.get_context("spawn")
        self.procs = []
        for i in range(n):
            args = (url, f"w{i}", ms_per_char, f"{self._dir}/w{i}.json", reserve)
            self.procs.append(ctx.Process(target=_worker_main, args=args, name=f"w{i}"))
        for p in self.procs:
            p.start()

    def wait_ready(self, r: redis.Redis, keys: Keys) -> None:
        wait_for_workers(r, keys, len(self.procs), 60, procs=self.procs)

    def stop(self) -> list[tuple[str, str, float, float]]:
        stop_processes(self.procs, timeout_s=30)
        out: list[tuple[str, str, float, float]] = []
        for i in range(len(self.procs)):
            out += [tuple(x) for x in json.loads(Path(f"{self._dir}/w{i}.json").read_text())]  # type: ignore[misc]
        return out


def shares(records: list[tuple[str, str, float, float]], t0: float, t1: float, key: int = 0) -> dict[str, float]:
    """Worker seconds per tenant (key=0) or lane (key=1) inside [t0, t1]."""
    busy: dict[str, float] = defaultdict(float)
    for rec in records:
        start, end = rec[2], rec[3]
        busy[rec[key]] += max(0.0, min(end, t1) - max(start, t0))
    return dict(busy)


def fill(p: Producer, tenant: str, chars: int, n: int, priority: str = "batch") -> None:
    seg = "字" * chars
    for i in range(0, n, 10):
        p.enqueue([seg] * min(10, n - i), tenant=tenant, priority=priority)


def saturated(
    url: str, r: redis.Redis, args: argparse.Namespace, chars: dict[str, int], label: str
) -> dict[str, float]:
    r.flushall()
    keys, p = Keys(), Producer(r)
    for tenant, weight in WEIGHTS.items():
        Tenants(r).set(tenant, TenantPolicy(weight=weight, max_queued=0))
    seg_s = {t: c * args.ms_per_char / 1000 for t, c in chars.items()}
    for tenant in WEIGHTS:  # enough for any share of the whole run
        fill(p, tenant, chars[tenant], int(args.workers * (args.seconds + 5) / seg_s[tenant]) + 50)
    pool = Pool(url, args.workers, args.ms_per_char)
    pool.wait_ready(r, keys)
    start = time.time()
    time.sleep(args.seconds)
    end = time.time()
    left = {t: int(r.hget(keys.depth(), t) or 0) for t in WEIGHTS}
    records = pool.stop()
    t0, t1 = start + args.warmup, end
    busy = shares(records, t0, t1)
    total = sum(busy.values())
    wsum = sum(WEIGHTS.values())
    print(
        f"\n[{label}] {args.workers} workers, window {t1 - t0:.1f} s, worker time {total:.1f} s "
        f"({total / (args.workers * (t1 - t0)):.1%} utilisation); still queued at the end: {left}"
    )
    devs = {}
    for tenant, weight in WEIGHTS.items():
        share, want = busy.get(tenant, 0) / total, weight / wsum
        n = sum(1 for rec in records if rec[0] == tenant and t0 <= rec[2] < t1)
        devs[tenant] = share / want - 1
        print(
            f"  {tenant}: weight {weight}  {chars[tenant]:>3} chars/segment  segments {n:>6}  "
            f"share {share:6.2%}  target {want:6.2%}  off by {devs[tenant]:+.1%}"
        )
    return devs


def ttfa(r: redis.Redis, p: Producer, sub: Subscriber, text: str, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        rid = p.enqueue(text, tenant="light").request_id
        for _frame in sub.frames(rid, timeout_s=30):
            out.append((time.perf_counter() - t0) * 1000)
            break
        time.sleep(0.02)
    return out


def light_tenant(url: str, r: redis.Redis, args: argparse.Namespace, reserve: int) -> float:
    r.flushall()
    keys, p, sub = Keys(), Producer(r), Subscriber(r)
    light_text = "欢迎致电我们的客服中心，请问今天有什么可以帮您？"
    first = segment_text(light_text)[0].text
    heavy_segments = [s.text for s in segment_text(PARAGRAPH)]
    pool = Pool(url, args.workers, args.ms_per_char, reserve)
    pool.wait_ready(r, keys)
    time.sleep(2 * HEARTBEAT_S)  # two heartbeats: every worker knows how many live workers there are
    ttfa(r, p, sub, light_text, 5)  # warm-up
    idle = ttfa(r, p, sub, light_text, args.rounds)
    sizes = [len(s) for s in heavy_segments]
    queued = 0
    while queued < 10_000:
        p.enqueue(heavy_segments, tenant="heavy", priority="batch")
        queued += len(heavy_segments)
    time.sleep(1.0)
    t0 = time.time()
    loaded = ttfa(r, p, sub, light_text, args.rounds)
    t1 = time.time()
    left = int(r.hget(keys.depth(), "heavy") or 0)
    records = pool.stop()
    busy = shares(records, t0, t1)
    util = sum(busy.values()) / (args.workers * (t1 - t0))
    heavy_rate = sum(1 for rec in records if rec[0] == "heavy" and t0 <= rec[2] < t1) / (t1 - t0)
    ratio50 = pct(loaded, 50) / pct(idle, 50)
    mode = f"reserve {reserve}" if reserve else "work-conserving"
    print(
        f"\n[light, {mode}] {args.workers} workers; light's first segment {first!r} ({len(first)} chars, "
        f"{text_weight(first) * args.ms_per_char:.0f} ms of synthesis); heavy: {queued} segments of "
        f"{min(sizes)}-{max(sizes)} chars (mean {statistics.fmean(sizes):.0f}), {left} still queued at the end; "
        f"worker utilisation while measuring {util:.1%}, heavy served {heavy_rate:.0f} segments/s"
    )
    print(f"  idle system   TTFA p50 {pct(idle, 50):6.1f} ms  p90 {pct(idle, 90):6.1f} ms  (n={len(idle)})")
    print(f"  heavy flood   TTFA p50 {pct(loaded, 50):6.1f} ms  p90 {pct(loaded, 90):6.1f} ms  (n={len(loaded)})")
    print(f"  ratio loaded/idle: p50 {ratio50:.2f}x  p90 {pct(loaded, 90) / pct(idle, 90):.2f}x")
    return ratio50


def batch_moves(url: str, r: redis.Redis, args: argparse.Namespace) -> float:
    r.flushall()
    keys, p = Keys(), Producer(r)
    fill(p, "A", 30, 20_000, priority="interactive")
    fill(p, "A", 30, 2_000, priority="batch")
    pool = Pool(url, args.workers, args.ms_per_char)
    pool.wait_ready(r, keys)
    start = time.time()
    time.sleep(args.seconds / 2)
    records = pool.stop()
    mine = [rec for rec in records if rec[2] >= start + 1]
    by_lane = defaultdict(int)
    for rec in mine:
        by_lane[rec[1]] += 1
    frac = by_lane["batch"] / max(1, len(mine))
    print(
        f"\n[batch] tenant A: 20,000 interactive + 2,000 batch segments queued; served {dict(by_lane)}: "
        f"batch got {frac:.1%} of A's segments (guaranteed share 10%)"
    )
    return frac


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--ms-per-char", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--only", choices=["equal", "unequal", "light", "batch"], default=None)
    args = ap.parse_args()
    with EmbeddedRedis() as server:
        r = sync_client(RedisSettings.from_dsn(server.url))
        print(f"redis-server {r.info()['redis_version']}; sleep backend {args.ms_per_char} ms per weighted character")
        results = {}
        if args.only in (None, "equal"):
            results["equal"] = saturated(server.url, r, args, {"A": 30, "B": 30, "C": 30}, "equal lengths")
        if args.only in (None, "unequal"):
            results["unequal"] = saturated(server.url, r, args, {"A": 90, "B": 30, "C": 6}, "unequal lengths")
        if args.only in (None, "light"):
            results["light"] = {"ratio_p50": light_tenant(server.url, r, args, 0)}
            results["light_reserve"] = {"ratio_p50": light_tenant(server.url, r, args, 1)}
        if args.only in (None, "batch"):
            results["batch"] = {"batch_fraction": batch_moves(server.url, r, args)}
        worst = max((abs(v) for k in ("equal", "unequal") if k in results for v in results[k].values()), default=0)
        print(f"\nworst share deviation from the weights: {worst:.1%} (target within 5%)")


if __name__ == "__main__":
    main()
