"""The worker side of the queue: wait for work, claim segments, complete them, dead-letter.

Claiming is one Lua call (``lua/claim.lua``, deficit round robin; see
:mod:`broker.scheduler`) over the shard's state, so every worker on every
machine sees one exact order. Claimed entries stay in the consumer group's
pending list until :meth:`Claimer.complete` acknowledges and deletes them and
settles the tenant's account with the measured worker time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from broker.scheduler import SCHEDULER
from broker.scripts import ADMIT, CLAIM, COMPLETE, FORGET, HEARTBEAT, LEASE, RECLAIM, REPAIR, script_source
from broker.stats import current_bucket
from shared.connection import as_str
from shared.errors import UnknownTenant
from shared.keys import GROUP, LANES, Keys

__all__ = [
    "ADMITTED",
    "DEAD_LETTER_MAXLEN",
    "DEFAULT_LEASE_MS",
    "DEFAULT_MAX_ATTEMPTS",
    "REJECTIONS",
    "Claimed",
    "Claimer",
    "Completion",
]

log = logging.getLogger(__name__)
DEAD_LETTER_MAXLEN = 10_000
HISTORY_MAXLEN = 10_000
"""Entries kept in the history of forgotten tenants (approximate trim)."""
DEFAULT_LEASE_MS = 15_000
"""A claimed segment is reclaimable this long after its lease was last extended."""
DEFAULT_MAX_ATTEMPTS = 3
"""Deliveries before a segment is dead-lettered."""


ADMITTED = ("ok", "cancelled", "expired")
"""Verdicts of :meth:`Claimer.admit` for an entry that owns its segment (``lua/admit.lua``)."""
REJECTIONS = {
    "unknown": ("unknown_request", "no such request in this shard (never enqueued, expired or deleted)"),
    "tenant": ("tenant_mismatch", "the request belongs to another tenant than the lane stream"),
    "range": ("seq_out_of_range", "seq is not below the request's segment count"),
    "finished": ("request_finished", "the request has already ended"),
    "duplicate": ("duplicate_segment", "another entry already carries this segment of the request"),
}
"""Verdicts that reject an entry -> (dead-letter code, reason)."""


def server_ms(client: redis.Redis) -> int:
    """Milliseconds since the epoch by the Redis server's clock (every worker agrees on it)."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True)
class Claimed:
    """One claimed lane-stream entry, not yet decoded (it may come from a foreign producer)."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    tenant: str = ""
    lane: str = ""
    cost_us: int = 0
    """What the scheduler charged the tenant for this entry (its estimate)."""
    attempt: int = 1
    """Delivery number: 1 for the first claim, +1 for each reclaim after a lease expired."""
    exhausted: bool = False
    """Reclaimed past the attempt limit: dead-letter it, do not synthesise it again."""

    @property
    def lease_member(self) -> str:
        return f"{self.tenant}|{self.lane}|{self.entry_id}"

    @property
    def request_id(self) -> str | None:
        raw = self.fields.get(b"r")
        if raw is None:
            return None
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return None

    @property
    def payload(self) -> bytes | None:
        return self.fields.get(b"p")

    @property
    def chars(self) -> int:
        """Weighted characters the producer declared (field ``c``); 0 when absent or invalid."""
        try:
            return max(0, int(self.fields.get(b"c", b"0")))
        except ValueError:
            return 0


@dataclass(frozen=True)
class Completion:
    done: int
    segments: int
    """-1 when the request's metadata is gone (expired or deleted)."""
    failed: int
    status: str = ""
    """The request's status after this completion (``cancelled`` stays cancelled)."""

    @property
    def finished(self) -> bool:
        return self.segments > 0 and self.done >= self.segments


def _fields(raw: list[bytes]) -> dict[bytes, bytes]:
    return {raw[i]: raw[i + 1] for i in range(0, len(raw) - 1, 2)}


class Claimer:
    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._claim = client.register_script(script_source(CLAIM))
        self._complete = client.register_script(script_source(COMPLETE))
        self._lease = client.register_script(script_source(LEASE))
        self._reclaim = client.register_script(script_source(RECLAIM))
        self._admit = client.register_script(script_source(ADMIT))
        self._repair = client.register_script(script_source(REPAIR))
        self._forget = client.register_script(script_source(FORGET))
        self.heartbeat_script = client.register_script(script_source(HEARTBEAT))
        """``lua/heartbeat.lua``: run it in a pipeline with the worker's other heartbeat writes."""

    def sweep(self, max_streams: int = 10_000, idle_ms: int | None = None) -> tuple[int, int]:
        """One pass over the shard's lane streams (at most ``max_streams``; call it rarely: the
        worker does every ``sweep_s``): put back in the scheduler idle tenants whose streams hold
        entries the depth counter missed (raw XADDs), and forget tenants idle for ``idle_ms``
        (see ``lua/forget.lua``). Returns (entries found, tenants forgotten)."""
        k = self.keys
        prefix = k.queue_prefix()
        tenants: set[str] = set()
        for n, key in enumerate(self._r.scan_iter(match=f"{prefix}*", count=1000, _type="stream")):
            if n >= max_streams:
                break
            name = as_str(key)[len(prefix) :]
            tenant, _, lane = name.rpartition(":")
            if lane in LANES and tenant:
                tenants.add(tenant)
        found = forgotten = 0
        for tenant in sorted(tenants):
            try:
                lanes = [k.queue(tenant, lane) for lane in LANES]
            except UnknownTenant:  # a stream named outside the tenant grammar: no producer of ours wrote it
                continue
            found += int(self._repair(keys=[k.depth(), k.active(), k.active_set(), k.tenants(), k.drr(), k.fresh(),
                                            k.wake(), *lanes], args=[tenant, GROUP]))  # fmt: skip
            if idle_ms is not None:
                forget_keys = [k.active_set(), k.drr(), k.depth(), k.served(), k.history(), *lanes]
                forgotten += int(self._forget(keys=forget_keys, args=[tenant, idle_ms, GROUP, HISTORY_MAXLEN]))
        return found, forgotten

    def admit(self, item: Claimed, request_id: str, seq: int) -> tuple[str, int]:
        """Check an entry against its request before synthesis: (verdict, the request's segment count).

        The verdict is one of :data:`ADMITTED` (the entry owns segment ``seq``) or a key of
        :data:`REJECTIONS`. Raises :class:`~shared.errors.RequestNotFound` for an id of another shard.
        """
        verdict, segments = self._admit(
            keys=[self.keys.request(request_id)], args=[item.tenant, seq, item.lease_member]
        )
        return as_str(verdict), int(segments)

    def claim(self, consumer: str, count: int = 1, *, workers: int = 1, reserve: int = 0,
              lease_ms: int = DEFAULT_LEASE_MS) -> list[Claimed]:  # fmt: skip
        """Up to ``count`` entries in scheduler order; an empty list when nothing is claimable.

        ``reserve`` of the ``workers`` live workers are kept for tenants coming back
        from idle (see ``lua/claim.lua``); 0 keeps the scheduler work-conserving.
        """
        k = self.keys
        out: list[Claimed] = []
        for _ in range(64):
            flat = self._claim(
                keys=[k.depth(), k.active(), k.active_set(), k.tenants(), k.drr(), k.fresh(), k.leases()],
                args=[k.queue_prefix(), GROUP, consumer, count - len(out), workers, reserve, 0, lease_ms],
            )
            for i in range(1, len(flat), 6):
                out.append(Claimed(flat[i].decode(), flat[i + 1].decode(), _fields(flat[i + 2]),
                                   flat[i + 3].decode(), flat[i + 4].decode(), int(flat[i + 5])))  # fmt: skip
            # the script stops after a bounded number of ring visits; go on while it says so
            if not int(flat[0]) or len(out) >= count:
                break
        return out

    def reclaim(self, consumer: str, count: int = 8, *, lease_ms: int = DEFAULT_LEASE_MS,
                max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> list[Claimed]:  # fmt: skip
        """Take over segments whose lease expired (their worker died or stalled).

        Each comes back with its delivery number; one past ``max_attempts`` comes back
        ``exhausted``, for the caller to dead-letter with an error frame.
        """
        k = self.keys
        args: list[str | int] = [k.queue_prefix(), GROUP, consumer, 0, lease_ms, max_attempts, count]
        flat = self._reclaim(keys=[k.leases()], args=args)
        out = []
        for i in range(0, len(flat), 7):
            out.append(Claimed(flat[i].decode(), flat[i + 1].decode(), _fields(flat[i + 2]), flat[i + 3].decode(),
                               flat[i + 4].decode(), 0, int(flat[i + 5]), flat[i + 6] == b"dead"))  # fmt: skip
        return out

    def extend(self, consumer: str, items: list[Claimed], *, lease_ms: int = DEFAULT_LEASE_MS) -> list[bool | None]:
        """Push the leases of ``items`` forward: True extended, False taken over by another worker,
        None completed meanwhile."""
        if not items:
            return []
        k = self.keys
        res = self._lease(keys=[k.leases()], args=[k.queue_prefix(), GROUP, consumer, lease_ms,
                                                   *(i.lease_member for i in items)])  # fmt: skip
        return [None if int(x) < 0 else bool(int(x)) for x in res]

    def release(self, items: list[Claimed]) -> None:
        """Hand claimed-but-unserved entries back at once (shutdown): their leases expire now."""
        if items:
            self._r.zadd(self.keys.leases(), {i.lease_member: 0 for i in items}, xx=True)

    def unfinished(self, count: int = 16) -> list[str]:
        """Requests whose last segment completed but whose end marker is overdue (the worker died)."""
        due = self._r.zrangebyscore(self.keys.finishing(), "-inf", server_ms(self._r), 0, count)
        return [as_str(rid) for rid in due if isinstance(rid, (bytes, str))]

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until an enqueue wakes us (True) or the timeout passes (False)."""
        return self._r.blpop([self.keys.wake()], timeout=timeout_s) is not None

    def complete(self, item: Claimed, request_id: str | None, ok: bool, measured_us: int = -1,
                 now_ms: int | None = None, lease_ms: int = DEFAULT_LEASE_MS,
                 dropped: bool = False, chars: int | None = None) -> Completion:  # fmt: skip
        """Acknowledge and delete the entry, settle the tenant's account with the measured
        worker time (``-1``: not measured, the estimate stands), count it once on its request.
        ``dropped``: a cancelled request's segment, never synthesised (not counted as served).
        ``chars``: the weighted characters the measured time was spent on, which updates the shared
        cost rate (the worker counts them itself; 0: no sample). None takes the entry's own ``c``
        field, which a producer declares (tests).
        ``now_ms`` pins the clock for tests; by default the script reads the server's."""
        k = self.keys
        key_list = [item.stream, k.drr(), k.tenants(), k.depth(), k.active(), k.active_set(), k.wake(),
                    k.served(), k.busy(current_bucket()), k.leases(), k.finishing()]  # fmt: skip
        if request_id is not None:
            key_list.append(k.request(request_id))
        done, segments, failed, status = self._complete(
            keys=key_list,
            args=[
                GROUP,
                item.entry_id,
                "dropped" if dropped else ("ok" if ok else "error"),
                item.tenant,
                item.lane,
                item.cost_us,
                int(measured_us),
                item.chars if chars is None else chars,
                SCHEDULER.bucket_ttl_s,
                0 if now_ms is None else now_ms,
                lease_ms,
            ],
        )
        return Completion(int(done), int(segments), int(failed), status.decode() if status else "")

    def _dead_entry(self, item: Claimed, reason: str, consumer: str) -> dict[str, bytes | str]:
        entry: dict[str, bytes | str] = {
            "stream": item.stream,
            "id": item.entry_id,
            "reason": reason[:1024],
            "worker": consumer,
            "at": str(int(time.time() * 1000)),
        }
        for name, value in list(item.fields.items())[:8]:
            entry[f"f:{name.decode(errors='replace')[:32]}"] = value[:4096]
        log.warning("dead-lettering %s %s: %s", item.stream, item.entry_id, reason)
        return entry

    def dead_letter_record(self, item: Claimed, reason: str, consumer: str) -> None:
        """Record the entry in the dead-letter stream; the caller completes it."""
        entry = self._dead_entry(item, reason, consumer)
        self._r.xadd(self.keys.dead(), entry, maxlen=DEAD_LETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]

    def dead_letter(self, item: Claimed, reason: str, consumer: str, measured_us: int = -1) -> None:
        """Move an entry that belongs to no known request to the dead-letter stream."""
        self.dead_letter_record(item, reason, consumer)
        self.complete(item, None, ok=False, measured_us=measured_us, chars=0)
