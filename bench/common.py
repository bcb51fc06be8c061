"""Shared helpers for the benchmarks: percentiles. Workers and backends are in :mod:`chorus.testing`."""

from __future__ import annotations

import statistics


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(ms: list[float]) -> str:
    return (
        f"p50 {pct(ms, 50):.3f} ms  p90 {pct(ms, 90):.3f} ms  p99 {pct(ms, 99):.3f} ms  "
        f"mean {statistics.fmean(ms):.3f} ms  (n={len(ms)})"
    )
