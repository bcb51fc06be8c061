"""Completing claimed entries: acknowledge, settle the tenant's account, count on the request; dead letters.

One Lua call (``lua/complete.lua``) acknowledges and deletes the entry, drops its
lease, corrects the tenant's deficit from the estimate to the measured worker time
(and the shared cost rate with it), records the work served, unparks the tenant
below its in-flight cap, and counts the segment once on its request. The completion
that finishes a request puts it in the finishing zset until its end marker is
written (:meth:`Completions.unfinished` finds the overdue ones). An entry that cannot
be served is recorded in the shard's capped dead-letter stream, then completed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis

from broker.claimed import Claimed
from broker.lease import server_ms
from broker.scheduler import SCHEDULER
from broker.scripts import COMPLETE, script_source
from chorus_client.constants import DEAD_LETTER_MAXLEN, DEFAULT_LEASE_MS, REPLICA_TIMEOUT_MS, SegmentStatus
from chorus_client.drive import replicated
from chorus_client.keys import GROUP, Keys
from chorus_client.rates import current_bucket
from shared.connection import as_str

__all__ = ["Completion", "Completions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    """The request's counts after one completion (``lua/complete.lua``'s reply)."""

    done: int
    """Segments of the request completed so far (this one included)."""
    segments: int
    """The request's segment count; -1 when its metadata is gone (expired or deleted) or there is
    no request (a dead letter)."""
    failed: int
    """Segments completed with an error."""
    status: str = ""
    """The request's status after this completion, a :class:`~chorus_client.constants.RequestStatus` value
    (``cancelled`` stays cancelled); "" without a request."""

    @property
    def finished(self) -> bool:
        """Every segment of the request has completed: its end marker is due."""
        return self.segments > 0 and self.done >= self.segments


class Completions:
    """Completion and dead-lettering of claimed entries in one shard."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._complete = client.register_script(script_source(COMPLETE))

    def complete(
        self,
        item: Claimed,
        request_id: str | None,
        ok: bool,
        measured_us: int = -1,
        now_ms: int | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        dropped: bool = False,
        chars: int | None = None,
        replicas: int = 0,
    ) -> Completion:
        """Acknowledge and delete the entry, settle the tenant's account with the measured worker time,
        count it once on its request (``request_id``; None: no request, as for a dead letter).

        ``ok``: synthesised without error (False counts the segment as failed on its request).
        ``measured_us``: microseconds of worker time spent on it (-1: not measured, the estimate stands).
        ``dropped``: a cancelled request's segment, never synthesised (not counted as served).
        ``chars``: the weighted characters the measured time was spent on, which updates the shared
        cost rate (the worker counts them itself; 0: no sample). None takes the entry's own ``c``
        field, which a producer declares (tests).
        ``now_ms`` pins the clock for tests; by default the script reads the server's.
        ``lease_ms``: when this completion finishes the request, its end marker is overdue (for
        :meth:`unfinished`) this long after now.
        ``replicas`` > 0: return only once that many replicas acknowledged it (``WAIT``); fewer raise
        ``NOREPLICAS`` (an outage to the worker, which backs off; the entry is redelivered by lease).
        A second completion of the same entry (another delivery) counts nothing and returns the
        request's counts as they are.
        """
        k = self.keys
        key_list = [
            item.stream,
            k.drr(),
            k.tenants(),
            k.depth(),
            k.active(),
            k.active_set(),
            k.wake(),
            k.served(),
            k.busy(current_bucket()),
            k.leases(),
            k.finishing(),
        ]
        if request_id is not None:
            key_list.append(k.request(request_id))
        outcome = SegmentStatus.DROPPED if dropped else (SegmentStatus.OK if ok else SegmentStatus.ERROR)
        args: list[Any] = [
            GROUP,
            item.entry_id,
            outcome.value,
            item.tenant,
            item.lane,
            item.cost_us,
            int(measured_us),
            item.chars if chars is None else chars,
            SCHEDULER.bucket_ttl_s,
            0 if now_ms is None else now_ms,
            lease_ms,
        ]
        if replicas:  # durable: the script and WAIT on one connection of the shard's node
            queue = partial(self._queue_complete, key_list, args)
            reply = replicated(self._r, key_list[0], queue, replicas, REPLICA_TIMEOUT_MS)[0]
        else:
            reply = self._complete(keys=key_list, args=args)
        done, segments, failed, status = reply
        return Completion(int(done), int(segments), int(failed), status.decode() if status else "")

    def _queue_complete(self, key_list: list[str], args: list[Any], pipe: Any) -> None:
        self._complete(client=pipe, keys=key_list, args=args)

    def unfinished(self, count: int = 16) -> list[str]:
        """Up to ``count`` ids of requests whose last segment completed but whose end marker is overdue
        by the server's clock (the worker that finished them died before writing it)."""
        due = self._r.zrangebyscore(self.keys.finishing(), "-inf", server_ms(self._r), 0, count)
        return [as_str(rid) for rid in due if isinstance(rid, (bytes, str))]

    def dead_letter_record(self, item: Claimed, reason: str, consumer: str) -> None:
        """Record the entry in the shard's dead-letter stream (capped at ``DEAD_LETTER_MAXLEN``, about);
        the caller completes it. ``reason`` is cut to 1024 characters, the entry's first 8 fields to
        4096 bytes each (as ``f:<name>``); ``consumer`` names the worker."""
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
        self._r.xadd(self.keys.dead(), entry, maxlen=DEAD_LETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]

    def dead_letter(self, item: Claimed, reason: str, consumer: str, measured_us: int = -1) -> None:
        """Move an entry that belongs to no known request to the dead-letter stream and complete it
        without a request (the tenant's account is settled, no cost-rate sample is taken)."""
        self.dead_letter_record(item, reason, consumer)
        self.complete(item, None, ok=False, measured_us=measured_us, chars=0)
