"""The worker side of the queue: wait for work, claim segments, complete them, dead-letter.

Claiming is one Lua call (``lua/claim.lua``) over the shard's state, so every
worker on every machine sees one exact order. Claimed entries stay in the
consumer group's pending list until :meth:`Claimer.complete` acknowledges and
deletes them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from broker.scripts import CLAIM, COMPLETE, script_source
from shared.keys import GROUP, Keys

__all__ = ["DEAD_LETTER_MAXLEN", "Claimed", "Claimer", "Completion"]

log = logging.getLogger(__name__)
DEAD_LETTER_MAXLEN = 10_000


@dataclass(frozen=True)
class Claimed:
    """One claimed lane-stream entry, not yet decoded (it may come from a foreign producer)."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]

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


@dataclass(frozen=True)
class Completion:
    done: int
    segments: int
    """-1 when the request's metadata is gone (expired or deleted)."""
    failed: int

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

    def claim(self, consumer: str, count: int = 1) -> list[Claimed]:
        k = self.keys
        flat = self._claim(
            keys=[k.depth(), k.active(), k.active_set()],
            args=[k.queue_prefix(), GROUP, consumer, count],
        )
        out: list[Claimed] = []
        for i in range(0, len(flat), 3):
            out.append(Claimed(flat[i].decode(), flat[i + 1].decode(), _fields(flat[i + 2])))
        return out

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until an enqueue wakes us (True) or the timeout passes (False)."""
        return self._r.blpop([self.keys.wake()], timeout=timeout_s) is not None

    def complete(self, item: Claimed, request_id: str, ok: bool) -> Completion:
        """Acknowledge and delete the entry; count it (once) on its request."""
        req_key = self.keys.request(request_id)
        done, segments, failed = self._complete(
            keys=[item.stream, req_key], args=[GROUP, item.entry_id, "ok" if ok else "error"]
        )
        return Completion(int(done), int(segments), int(failed))

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

    def dead_letter(self, item: Claimed, reason: str, consumer: str) -> None:
        """Move an entry that belongs to no known request to the dead-letter stream."""
        entry = self._dead_entry(item, reason, consumer)
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(self.keys.dead(), entry, maxlen=DEAD_LETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.xack(item.stream, GROUP, item.entry_id)
        pipe.xdel(item.stream, item.entry_id)
        pipe.execute()
