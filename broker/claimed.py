"""A claimed lane-stream entry: what claiming and reclaiming hand a worker, and completion settles.

The entry is kept undecoded (it may come from a foreign producer): the worker decodes
its payload and :mod:`broker.claim` admits it against its request before synthesis.
Its lease is named by :attr:`Claimed.lease_member`, ``<tenant>|<lane>|<entry id>``, the
member of the shard's leases zset that ``lua/claim.lua`` adds, ``lua/lease.lua``
extends, ``lua/reclaim.lua`` takes over and ``lua/complete.lua`` removes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Claimed", "entry_fields"]


@dataclass(frozen=True)
class Claimed:
    """One claimed lane-stream entry, not yet decoded (it may come from a foreign producer)."""

    stream: str
    """The lane stream's key (``<prefix>:{<shard>}:q:<tenant>:<lane>``)."""
    entry_id: str
    """The stream entry id (``<ms>-<n>``)."""
    fields: dict[bytes, bytes]
    """The entry's fields as written: ``r`` request id, ``c`` weighted characters, ``p`` payload."""
    tenant: str = ""
    lane: str = ""
    """A :class:`~chorus_client.constants.Lane` value."""
    cost_us: int = 0
    """What the scheduler charged the tenant for this entry (its estimate), in microseconds;
    0 for a reclaimed entry (it was charged when first claimed)."""
    attempt: int = 1
    """Delivery number: 1 for the first claim, +1 for each reclaim after a lease expired."""
    exhausted: bool = False
    """Reclaimed past the attempt limit: dead-letter it, do not synthesise it again."""

    @property
    def lease_member(self) -> str:
        """The entry's member in the leases zset: ``<tenant>|<lane>|<entry id>``."""
        return f"{self.tenant}|{self.lane}|{self.entry_id}"

    @property
    def request_id(self) -> str | None:
        """Field ``r`` as ASCII; None when absent or not ASCII."""
        raw = self.fields.get(b"r")
        if raw is None:
            return None
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return None

    @property
    def payload(self) -> bytes | None:
        """Field ``p``, the encoded segment job; None when absent."""
        return self.fields.get(b"p")

    @property
    def chars(self) -> int:
        """Weighted characters the producer declared (field ``c``); 0 when absent or invalid."""
        try:
            return max(0, int(self.fields.get(b"c", b"0")))
        except ValueError:
            return 0


def entry_fields(raw: list[bytes]) -> dict[bytes, bytes]:
    """A stream entry's flat field list, as a script returns it (``[name, value, ...]``), as a dict."""
    return {raw[i]: raw[i + 1] for i in range(0, len(raw) - 1, 2)}
