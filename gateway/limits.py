"""Admission at the gateway's door: bounded concurrent streams and calls, globally and per tenant.

One tenant holding many event streams or WebSockets must not take the gateway
from the others. Every streaming response (audio, events, speech) and every open
WebSocket holds a *stream* slot for its lifetime; every other API call holds a
*call* slot while it is handled. Over a tenant's share the answer is 429, over the
gateway's total it is 503, both with ``Retry-After``: load is never a 500. The
Redis connection pools are sized from the same numbers (see :mod:`gateway.service`), so
a request that is admitted finds a connection.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from gateway.http import HttpError

__all__ = ["Limits", "Slots"]


@dataclass(frozen=True)
class Limits:
    """Concurrency limits of one gateway process (env: ``CHORUS_GATEWAY_MAX_STREAMS`` etc.)."""

    max_streams: int = 256
    """Streams open at once over all tenants (audio, events, speech responses, WebSockets)."""
    max_streams_per_tenant: int = 32
    """Streams one tenant may hold open at once."""
    max_calls: int = 256
    """Non-streaming API calls (enqueue, cancel, lists) handled at once over all tenants."""
    max_calls_per_tenant: int = 32
    """Such calls one tenant may have in progress at once."""
    retry_after_s: int = 1
    """``Retry-After`` of a refusal."""

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_streams_per_tenant", "max_calls", "max_calls_per_tenant"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @classmethod
    def from_env(cls) -> Limits:
        def get(name: str, default: int) -> int:
            raw = os.environ.get(f"CHORUS_GATEWAY_{name.upper()}")
            return int(raw) if raw else default

        d = cls()
        return cls(
            get("max_streams", d.max_streams),
            get("max_streams_per_tenant", d.max_streams_per_tenant),
            get("max_calls", d.max_calls),
            get("max_calls_per_tenant", d.max_calls_per_tenant),
        )


class Slots:
    """Counts what each tenant holds; ``take`` raises :class:`HttpError` (429 or 503) when full.

    The gateway is one event loop, so plain counters are exact (no awaits between check and take).
    """

    def __init__(self, total: int, per_tenant: int, what: str, retry_after_s: int = 1) -> None:
        self.total, self.per_tenant, self.what = total, per_tenant, what
        self._retry = {"Retry-After": str(retry_after_s)}
        self.held: Counter[str] = Counter()
        self.in_use = 0
        self.refused: Counter[int] = Counter()

    def take(self, tenant: str) -> None:
        self.check(tenant)
        self.held[tenant] += 1
        self.in_use += 1

    def check(self, tenant: str) -> None:
        """Raise as :meth:`take` would, without taking a slot."""
        if self.held.get(tenant, 0) >= self.per_tenant:
            self.refused[429] += 1
            raise HttpError(
                429,
                f"too many {self.what} open for this tenant (limit {self.per_tenant}); close some or retry later",
                f"too_many_{self.what}",
                self._retry,
            )
        if self.in_use >= self.total:
            self.refused[503] += 1
            raise HttpError(
                503,
                f"the gateway is at its limit of {self.total} {self.what}; retry shortly",
                "gateway_busy",
                self._retry,
            )

    def give(self, tenant: str) -> None:
        if self.held[tenant] > 0:
            self.held[tenant] -= 1
            self.in_use -= 1
            if not self.held[tenant]:
                del self.held[tenant]
