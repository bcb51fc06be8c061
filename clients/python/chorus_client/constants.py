"""Every number and name that two components must agree on, in one place.

Lanes, request, segment and end statuses are ``(str, Enum)`` types: they compare
equal to the strings on the wire (``Lane.BATCH == "batch"``), so Redis fields and
frames keep their values. :func:`lua_constants` hands the same values to the
broker's Lua scripts (``broker/lua/prelude.lua``), and the CLI's defaults are
read from here, so no value is written twice.

Times are in seconds (``_S``) or milliseconds (``_MS``), as the name says.
"""

from __future__ import annotations

import json
from enum import Enum

__all__ = [
    "AUDIO_MAXLEN",
    "BACKOFF_MAX_S",
    "BACKOFF_MIN_S",
    "CANCELLED_AUDIO_TTL_S",
    "DEAD_LETTER_MAXLEN",
    "DEFAULT_LEASE_MS",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PREFIX",
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_SHARD",
    "FINISHED_AUDIO_TTL_S",
    "FINISHED_REQUEST_TTL_S",
    "HEARTBEAT_S",
    "HISTORY_MAXLEN",
    "LANES",
    "MAX_SHARDS",
    "MAX_SHARD_HOPS",
    "PENDING_AUDIO_TTL_S",
    "PLACEMENT_TTL_S",
    "REPLICA_TIMEOUT_MS",
    "REQUEST_TTL_S",
    "SHARD_COUNT_TTL_S",
    "STATS_BUCKET_S",
    "STATS_BUCKET_TTL_S",
    "STATS_WINDOW_S",
    "VOICES_TTL_S",
    "WAKE_LIST_CAP",
    "WORKER_LIVE_S",
    "Durability",
    "EndStatus",
    "Lane",
    "RequestStatus",
    "SegmentStatus",
    "backoff",
    "lua_constants",
]


DEFAULT_PREFIX = "chorus"
"""First part of every key name (one deployment per prefix)."""
DEFAULT_SHARD = "s0"
"""The shard (hash tag ``{s0}``) of every tenant of a deployment with one shard (the default)."""
MAX_SHARDS = 1024
"""Most shards a deployment may have (``<prefix>:shards``; names ``s0`` … ``s1023``)."""
SHARD_COUNT_TTL_S = 5.0
"""How long a producer trusts the shard count it read (growing is rare, and a stale count is safe:
the tenants it would misplace are pinned by forward entries)."""
PLACEMENT_TTL_S = 60.0
"""How long a producer remembers that a tenant lives outside its home shard (a ``WRONGSHARD`` answer)."""
VOICES_TTL_S = 5.0
"""How long a producer trusts the ``voices`` hash it read to choose voices for requests that name
none (workers rewrite it when the voices they serve change, and every 60 s)."""
MAX_SHARD_HOPS = 4
"""``WRONGSHARD`` forwards a producer follows for one enqueue before giving up (a chain longer
than a move's is an operator's loop: ``TenantMoved``)."""


class Lane(str, Enum):
    """A tenant's queues, claimed in this order (``batch`` keeps a guaranteed share)."""

    RT = "rt"
    """Real-time: the first segment of an interactive request (its time to first audio)."""
    INTERACTIVE = "interactive"
    BATCH = "batch"

    def __str__(self) -> str:
        return self.value


LANES: tuple[str, ...] = tuple(lane.value for lane in Lane)
"""Lane names in claim order, as plain strings (key names, Lua tables, CLI choices)."""


class RequestStatus(str, Enum):
    """The ``status`` field of a request hash (``chorus:{s<n>}:req:<id>``)."""

    QUEUED = "queued"
    """Enqueued; no segment has completed yet."""
    RUNNING = "running"
    """At least one segment completed, not all."""
    DONE = "done"
    """Every segment completed without error."""
    FAILED = "failed"
    """Every segment completed; at least one with an error frame."""
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def final(self) -> bool:
        return self in (RequestStatus.DONE, RequestStatus.FAILED, RequestStatus.CANCELLED)


class SegmentStatus(str, Enum):
    """How a worker completed one segment (``lua/complete.lua``'s outcome argument)."""

    OK = "ok"
    ERROR = "error"
    """It failed: an error frame carries the reason, and the request will end ``failed``."""
    DROPPED = "dropped"
    """It was not served (cancelled, past its deadline, rejected): no worker time is charged."""

    def __str__(self) -> str:
        return self.value


class EndStatus(str, Enum):
    """The ``status`` of a request's end frame (the last frame of its audio stream)."""

    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class Durability(str, Enum):
    """When a write counts as done (``--durability``, ``$CHORUS_DURABILITY``)."""

    NONE = "none"
    """When the master has it (with AOF ``appendfsync always``, a restart loses nothing; a master's
    death before its replica copied the write loses it: the replication lag, usually milliseconds)."""
    REPLICA = "replica"
    """When at least one replica has it too (``WAIT``): enqueues, frames and completions survive the
    master's death and a failover. Costs a replication round trip per write."""

    def __str__(self) -> str:
        return self.value

    @property
    def replicas(self) -> int:
        return 1 if self is Durability.REPLICA else 0


REPLICA_TIMEOUT_MS = 1000
"""Longest ``WAIT`` for a replica's acknowledgement before the write is reported ``NOREPLICAS``
(and retried, since every such write is idempotent)."""

# --- Expiries: every key a component creates has one (or an owner that deletes it). ---

REQUEST_TTL_S = 24 * 3600
"""Request metadata nobody finishes (the longest a request may be queued)."""
FINISHED_REQUEST_TTL_S = 3600
"""A finished request's status stays readable this long."""
PENDING_AUDIO_TTL_S = 3600
"""Set with every frame written before the end marker: an audio stream never outlives it,
even when its request is lost (flushed, evicted, expired)."""
FINISHED_AUDIO_TTL_S = 300
"""A finished request's audio stays readable this long after its end frame."""
CANCELLED_AUDIO_TTL_S = FINISHED_AUDIO_TTL_S
"""A cancelled request's audio (ended by the canceller) stays readable this long."""

STATS_BUCKET_S = 10
"""Width of the time buckets (``chorus:{s<n>}:busy:<n>``) that hold each tenant's recent work."""
STATS_BUCKET_TTL_S = 130
"""A time bucket's expiry: two minutes and one bucket, so a whole last minute is always readable."""
STATS_WINDOW_S = 60
""""Recent" in statistics and retry-after: the buckets covering the last minute."""

# --- Liveness ---

HEARTBEAT_S = 2.0
"""How often a worker writes its heartbeat (and reads the live-worker count)."""
WORKER_LIVE_S = 10.0
"""A worker whose last heartbeat (by the server's clock) is older than this is not live: not
counted by ``/readyz``, ``chorus speak`` or a worker's reserve. Five missed beats."""
DEFAULT_LEASE_MS = 15_000
"""A claimed segment whose lease was not extended for this long is reclaimed by another worker; a
live worker extends it every third of that."""
DEFAULT_MAX_ATTEMPTS = 3
"""Deliveries of a segment before it is dead-lettered with an error frame."""

# --- Retries after a Redis outage ---

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 2.0
"""Workers and subscribers retry from ``BACKOFF_MIN_S`` doubling up to this: an outage costs at
most this much extra delay once Redis is back."""


def backoff(previous: float | None) -> float:
    """The next wait after ``previous`` (None: the first), in seconds: doubling, capped."""
    return BACKOFF_MIN_S if previous is None else min(previous * 2, BACKOFF_MAX_S)


# --- Caps ---

WAKE_LIST_CAP = 64
"""Entries kept in the wake-up list idle workers block on (one per enqueue; a worker needs one)."""
AUDIO_MAXLEN = 100_000
"""Safety cap on one audio stream's length (a request at the protocol's limits makes fewer frames)."""
DEAD_LETTER_MAXLEN = 10_000
"""Entries kept in a shard's dead-letter stream (approximate trim)."""
HISTORY_MAXLEN = 10_000
"""Forgotten tenants' totals kept in a shard's history stream (approximate trim)."""
DEFAULT_SAMPLE_RATE = 24_000
"""Hz of Kokoro's voices: the fallback where a voice's model is not known."""


def lua_constants() -> str:
    """The values the Lua scripts share with Python, as one JSON object (see ``prelude.lua``)."""
    from chorus_client.protocol import MAX_ENTRY_BYTES, MAX_SEGMENTS  # it imports this module

    return json.dumps(
        {
            "max_segments": MAX_SEGMENTS,
            "max_entry_bytes": MAX_ENTRY_BYTES,
            "lanes": list(LANES),
            "wake_cap": WAKE_LIST_CAP,
            "status": {s.name.lower(): s.value for s in RequestStatus},
            "segment": {s.name.lower(): s.value for s in SegmentStatus},
        },
        separators=(",", ":"),
    )
