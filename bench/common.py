"""Shared helpers for the benchmarks: percentiles and a null-backend worker process."""

from __future__ import annotations

import multiprocessing as mp
import statistics

from shared.config import RedisSettings
from shared.connection import sync_client
from workers.backend import NullBackend
from workers.engine import Engine
from workers.worker import Worker, WorkerConfig


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(ms: list[float]) -> str:
    return (f"p50 {pct(ms, 50):.3f} ms  p90 {pct(ms, 90):.3f} ms  p99 {pct(ms, 99):.3f} ms  "
            f"mean {statistics.fmean(ms):.3f} ms  (n={len(ms)})")  # fmt: skip


class Identity:
    """A frontend that passes text through (the null and sleep backends read no phonemes)."""

    lang = "zh"

    def phonemize(self, text: str) -> str:
        return text


def null_engine() -> Engine:
    backend = NullBackend()
    return Engine(backends={"jm_kumo": backend}, frontends={"zh": Identity()})


def _run_null_worker(url: str, name: str, claim: int) -> None:
    worker = Worker(sync_client(RedisSettings.from_dsn(url)), null_engine(),
                    config=WorkerConfig(name=name, claim_count=claim, idle_wait_s=1.0))  # fmt: skip
    worker.run()


def start_null_workers(url: str, n: int, claim: int = 1) -> list[mp.process.BaseProcess]:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_run_null_worker, args=(url, f"null-{i}", claim), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    return procs
