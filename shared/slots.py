"""Moving one hash slot of a Redis Cluster, with its keys, from its master to another: a live resharding.

The steps are those of ``redis-cli --cluster reshard``: the target marks the slot
IMPORTING, the source MIGRATING; keys move in batches with ``MIGRATE`` (clients meet
``ASK`` and ``TRYAGAIN`` meanwhile, and follow them); then every master learns the
new owner (``CLUSTER SETSLOT <slot> NODE``). chorus uses it to spread its shards over
the masters (``chorus shards balance``: the slots of ``{s0}``, ``{s1}`` … fall where
CRC16 puts them, which for a few shards is rarely even) and the test cluster to
move a shard's slot under load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

__all__ = ["SlotNode", "begin_migration", "finish_migration", "migrate_keys", "migrate_slot"]


@dataclass(frozen=True)
class SlotNode:
    """A master as a resharding needs it: a plain client of that node, its node id, and the address
    the other nodes reach it at (for ``MIGRATE``)."""

    client: redis.Redis = field(repr=False)
    node_id: str
    host: str
    port: int


def _cmd(client: redis.Redis, *args: object) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def begin_migration(slot: int, source: SlotNode, target: SlotNode) -> None:
    """Mark ``slot`` IMPORTING on ``target`` and MIGRATING on ``source`` (idempotent): from now on
    clients meet ``ASK`` for keys already moved, and multi-key calls ``TRYAGAIN``."""
    _cmd(target.client, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
    _cmd(source.client, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)


def migrate_keys(
    source: SlotNode,
    target: SlotNode,
    keys: list[Any],
    *,
    password: str | None = None,
    username: str | None = None,
    timeout_ms: int = 5000,
) -> None:
    """``MIGRATE`` ``keys`` from ``source`` to ``target``; ``password`` (and ``username``)
    authenticate on the target."""
    auth: list[object] = []
    if password is not None:
        auth = ["AUTH2", username, password] if username else ["AUTH", password]
    _cmd(source.client, "MIGRATE", target.host, target.port, "", 0, timeout_ms, *auth, "KEYS", *keys)


def finish_migration(slot: int, source: SlotNode, target: SlotNode, masters: list[SlotNode]) -> None:
    """Give ``slot`` to ``target`` on every master: the target first, then the source (so it stops
    redirecting with ASK), then the others."""
    ordered = [target, source] + [m for m in masters if m.node_id not in (target.node_id, source.node_id)]
    for node in ordered:
        _cmd(node.client, "CLUSTER", "SETSLOT", slot, "NODE", target.node_id)


def migrate_slot(
    slot: int,
    source: SlotNode,
    target: SlotNode,
    masters: list[SlotNode],
    *,
    password: str | None = None,
    username: str | None = None,
    batch: int = 10,
    pause_s: float = 0.0,
    timeout_ms: int = 5000,
) -> int:
    """Move ``slot`` and its keys from ``source`` to ``target`` and tell every one of ``masters``;
    returns the keys moved. ``password`` (and ``username``) authenticate ``MIGRATE`` on the target.
    Safe to run again after a failure halfway: the markings are idempotent and the keys still on
    the source move on the next run."""
    if source.node_id == target.node_id:
        return 0
    begin_migration(slot, source, target)
    moved = 0
    while keys := _cmd(source.client, "CLUSTER", "GETKEYSINSLOT", slot, batch):
        migrate_keys(source, target, keys, password=password, username=username, timeout_ms=timeout_ms)
        moved += len(keys)
        if pause_s:
            time.sleep(pause_s)
    finish_migration(slot, source, target, masters)
    return moved
