"""Recent work per tenant, from the time buckets workers write: service rates and retry-after.

``complete.lua`` adds each completed segment to the bucket of its time
(``chorus:{s<n>}:busy:<n>``, fields ``<tenant>:<lane>:n`` segments and
``<tenant>:<lane>:us`` worker time; :data:`~chorus_client.constants.STATS_BUCKET_S`
wide, expiring after :data:`~chorus_client.constants.STATS_BUCKET_TTL_S`). The last
minute is the buckets that cover the last 60 seconds, so it spans 60 to 70 seconds;
rates divide by the span actually covered. A :class:`~chorus_client.errors.QueueFull`
carries ``excess / rate`` as its retry-after.
"""

from __future__ import annotations

import time

from chorus_client.constants import LANES, STATS_BUCKET_S, STATS_WINDOW_S
from chorus_client.keys import Keys

__all__ = ["current_bucket", "retry_after", "split_field", "tenant_rate", "window"]


def current_bucket(now: float | None = None) -> int:
    """Number of the time bucket holding ``now`` (seconds since the epoch; None: this machine's clock)."""
    return int((time.time() if now is None else now) // STATS_BUCKET_S)


def window(keys: Keys, now: float | None = None) -> tuple[list[str], float]:
    """The bucket keys covering the last minute, and the seconds they span."""
    now = time.time() if now is None else now
    last = current_bucket(now)
    first = last - STATS_WINDOW_S // STATS_BUCKET_S
    return [keys.busy(b) for b in range(first, last + 1)], now - first * STATS_BUCKET_S


def split_field(name: bytes) -> tuple[str, str, str] | None:
    """``<tenant>:<lane>:<n|us>`` as its three parts; None for any other field."""
    parts = name.decode().rsplit(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and parts[1] in LANES else None


def tenant_rate(buckets: list[dict[bytes, bytes]], tenant: str, span_s: float) -> float:
    """Segments per second completed for ``tenant`` in the given buckets (HGETALL replies)."""
    n = 0
    for bucket in buckets:
        for name, value in bucket.items():
            parts = split_field(name)
            if parts is not None and parts[0] == tenant and parts[2] == "n":
                n += int(value)
    return n / max(span_s, 1e-3)


def retry_after(limit: int, queued: int, requested: int, rate: float) -> float | None:
    """Seconds until ``requested`` more segments fit under ``limit`` at ``rate`` segments/s (None: no rate)."""
    if not rate:
        return None
    return round(max(0.1, (queued + requested - limit) / rate), 1)
