"""Tenants in shards, as an operator changes them: the shard count, where a tenant lives, growing, moving.

Producers find a tenant's shard by :mod:`chorus_client.placement` (the home shard
by hash, then forwards). This module writes what they read:

* :meth:`Shards.grow` raises the shard count. Every tenant a shard knows (a policy,
  or work queued) whose home moves under the new count is first *pinned* where it
  is: its entry there gets ``"shard": <that shard>`` and its new home a forward to
  it. Only then is the count written, so a producer with either count finds it.
  Shrinking is refused: the shards above the new count would hold work no worker serves.
* :meth:`Shards.move` moves a tenant to another shard: switch, then drain.

  1. The tenant's policy is written to the target with ``"shard": <target>``.
  2. Its entry in the source, and in its home shard when that is a third one, becomes a
     forward (the same policy with ``"shard": <target>``): from the next enqueue on,
     producers are answered ``WRONGSHARD`` there (nothing written) and go to the target.
  3. The source drains: ``move`` waits until the tenant has nothing queued or in flight
     there. Work accepted before the switch stays where it is, because a request id names
     its shard and every worker serves every shard: it is served, heard, cancelled and
     reported as before.

  Nothing is lost or doubled: a request lives in one shard from its enqueue to its end,
  and a refused enqueue wrote nothing. The price, while the source drains: the tenant has
  work in two shards, so it may get up to twice its share for that long, and a request
  accepted after the switch may start before an older one still queued in the source.
  Draining first and switching after would stall the tenant's producers for the whole
  drain, or never end under steady load.
* :meth:`Shards.balance` spreads the shards' slots evenly over a Redis Cluster's masters
  (CRC16 puts ``{s0}`` … ``{s5}`` four on one master of three): a live migration of
  each slot it moves (:func:`shared.slots.migrate_slot`), safe under load.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace

import redis
from redis.crc import key_slot

from broker.policy import DEFAULT_FIELD, TenantPolicy, effective_policy
from broker.scripts import POLICY, script_source
from chorus_client.constants import MAX_SHARD_HOPS
from chorus_client.keys import Keys, home_shard, shard_names, validate_shard, validate_tenant
from chorus_client.placement import parse_shard_count
from shared.connection import as_str
from shared.errors import ConfigError, TenantMoved
from shared.slots import SlotNode, migrate_slot

__all__ = ["Drain", "Move", "Shards"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drain:
    """What a tenant still has in a shard: segments queued (not yet claimed) and in flight."""

    queued: int
    inflight: int

    @property
    def empty(self) -> bool:
        return self.queued <= 0 and self.inflight <= 0


@dataclass(frozen=True)
class Move:
    """A shard's slot moved (or to move) from one master to another (``host:port``)."""

    shard: str
    slot: int
    source: str
    target: str
    keys: int = 0


class Shards:
    """The deployment's shards and where tenants live in them (the ``chorus shards`` and
    ``chorus tenants move`` commands, and :class:`broker.tenants.Tenants`, use this)."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._policy = client.register_script(script_source(POLICY))

    # -- reading ------------------------------------------------------------------------

    def count(self) -> int:
        """The shard count (1 when never set); ProtocolError when the stored value is damaged."""
        return parse_shard_count(self._r.get(self.keys.shards()))

    def names(self) -> list[str]:
        """``s0 … sN-1``."""
        return shard_names(self.count())

    def all_keys(self) -> list[Keys]:
        """The keys of every shard, in order."""
        return [self.keys.of_shard(name) for name in self.names()]

    def entry(self, shard: str, tenant: str) -> TenantPolicy | None:
        """The tenant's entry in ``shard``'s tenants hash (its policy, or a forward), or None."""
        raw = self._r.hget(self.keys.of_shard(shard).tenants(), tenant)
        return None if raw is None else TenantPolicy.from_dict(json.loads(raw))

    def locate(self, tenant: str) -> str:
        """The shard the tenant lives in: its home shard, then the forwards from there.
        Raises :class:`~shared.errors.TenantMoved` for forwards that loop or run too long."""
        shard = home_shard(validate_tenant(tenant), self.count())
        for _ in range(MAX_SHARD_HOPS + 1):
            entry = self.entry(shard, tenant)
            if entry is None or entry.shard in (None, shard):
                return shard
            shard = entry.shard
        raise TenantMoved(tenant, shard)

    def drain(self, tenant: str, shard: str) -> Drain:
        """What ``tenant`` still has queued and in flight in ``shard``."""
        k = self.keys.of_shard(shard)
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(k.depth(), tenant)
        pipe.hget(k.drr(), f"{tenant}:f")
        queued, inflight = pipe.execute()
        return Drain(int(queued or 0), int(inflight or 0))

    def tenants_in(self, shard: str) -> set[str]:
        """Tenants ``shard`` knows: its own policies (forwards excluded) and tenants with work there."""
        k = self.keys.of_shard(shard)
        out: set[str] = set()
        for name, raw in self._r.hgetall(k.tenants()).items():
            tenant = as_str(name)
            if tenant != DEFAULT_FIELD and TenantPolicy.from_dict(json.loads(raw)).shard in (None, shard):
                out.add(tenant)
        out.update(as_str(t) for t in self._r.smembers(k.active_set()))
        return out

    def node_of(self, shard: str) -> str:
        """``host:port`` of the node serving ``shard``'s slot on Redis Cluster; "" on one server."""
        nodes = getattr(self._r, "get_node_from_key", None)
        if nodes is None:
            return ""
        node = nodes(self.keys.of_shard(shard).depth())
        return f"{node.host}:{node.port}" if node is not None else "?"

    # -- writing ------------------------------------------------------------------------

    def write(self, shard: str, tenant: str, policy: TenantPolicy | None) -> None:
        """Set (None: delete) the tenant's entry in ``shard`` through ``lua/policy.lua``, which
        also unparks the tenant there when a raised in-flight cap leaves it room."""
        self.write_field(shard, tenant, "" if policy is None else policy.to_json())

    def write_field(self, shard: str, name: str, raw: str) -> None:
        """Set field ``name`` (a tenant, or ``*`` for the default) of ``shard``'s tenants hash to ``raw``
        ("" deletes it) through ``lua/policy.lua``."""
        k = self.keys.of_shard(validate_shard(shard))
        self._policy(keys=[k.tenants(), k.drr(), k.depth(), k.active(), k.active_set(), k.wake()], args=[name, raw])

    def effective(self, shard: str, tenant: str) -> tuple[TenantPolicy, bool]:
        """The policy that applies to ``tenant`` in ``shard`` (its own, else that shard's default), and
        whether it is the tenant's own."""
        own, default = self._r.hmget(self.keys.of_shard(shard).tenants(), [tenant, DEFAULT_FIELD])
        return effective_policy(own, default)

    def grow(self, count: int) -> dict[str, str]:
        """Raise the shard count to ``count``, pinning every known tenant whose home moves where it
        lives now; returns {tenant: shard} of those pinned. ConfigError when ``count`` is smaller
        than the current count."""
        current = self.count()
        new_names = shard_names(count)
        if count < current:
            raise ConfigError(
                f"shards can only grow ({current} now): shards above {count} would hold work that no worker serves"
            )
        pinned: dict[str, str] = {}
        for shard in shard_names(current):
            for tenant in sorted(self.tenants_in(shard)):
                new_home = home_shard(tenant, count)
                if new_home == shard:
                    continue
                policy = replace(self.effective(shard, tenant)[0], shard=shard)
                self.write(shard, tenant, policy)
                self.write(new_home, tenant, policy)
                pinned[tenant] = shard
        self._r.set(self.keys.shards(), str(count))
        log.info("shard count %d -> %d (%s); pinned %d tenants", current, count, new_names[-1], len(pinned))
        return pinned

    def move(
        self, tenant: str, to: str, *, wait_s: float = 600.0, poll_s: float = 0.2, policy: TenantPolicy | None = None
    ) -> tuple[str, Drain]:
        """Move ``tenant`` to shard ``to`` (switch, then drain; see the module docstring) and wait up
        to ``wait_s`` for the source to drain; returns (the source shard, what it still holds: empty
        unless the wait ran out, in which case the move stands and the rest is served where it is).
        ``policy`` replaces the tenant's policy on the way. ConfigError for a shard outside the count."""
        validate_tenant(tenant)
        if to not in self.names():
            raise ConfigError(f"shard {to!r} is not one of {', '.join(self.names())}")
        source = self.locate(tenant)
        moved = replace(policy or self.effective(source, tenant)[0], shard=to)
        self.write(to, tenant, moved)  # 1. it lives there
        home = home_shard(tenant, self.count())
        for shard in {source, home} - {to}:  # 2. forwards
            self.write(shard, tenant, moved)
        if source == to:
            return source, Drain(0, 0)
        deadline = time.monotonic() + wait_s
        left = self.drain(tenant, source)
        while not left.empty and time.monotonic() < deadline:  # 3. the source drains
            time.sleep(poll_s)
            left = self.drain(tenant, source)
        log.info("moved tenant %s %s -> %s; left in %s: %s", tenant, source, to, source, left)
        return source, left

    # -- spreading over a cluster --------------------------------------------------------

    def layout(self) -> dict[str, list[str]]:
        """``host:port`` of each master -> the shards whose slot it serves (every master listed);
        {} on one redis-server."""
        primaries = getattr(self._r, "get_primaries", None)
        if primaries is None:
            return {}
        out: dict[str, list[str]] = {f"{n.host}:{n.port}": [] for n in primaries()}
        for name in self.names():
            out.setdefault(self.node_of(name), []).append(name)
        return out

    def plan(self) -> list[Move]:
        """The fewest moves that leave every master within one shard of every other."""
        layout = {node: list(shards) for node, shards in self.layout().items()}
        moves: list[Move] = []
        while layout:
            most = max(layout, key=lambda n: (len(layout[n]), n))
            least = min(layout, key=lambda n: (len(layout[n]), n))
            if len(layout[most]) - len(layout[least]) <= 1:
                break
            shard = layout[most].pop()
            layout[least].append(shard)
            moves.append(Move(shard, key_slot(f"{{{shard}}}".encode()), most, least))
        return moves

    def balance(self, *, batch: int = 100, pause_s: float = 0.0) -> list[Move]:
        """Carry out :meth:`plan`: each move a live slot migration (clients follow ASK and MOVED;
        scripts answer TRYAGAIN while a slot is half moved, and are retried). Returns the moves made."""
        made: list[Move] = []
        cluster = self._r
        for move in self.plan():
            nodes = {f"{n.host}:{n.port}": n for n in cluster.get_primaries()}  # type: ignore[attr-defined]
            masters = [self._slot_node(n) for n in nodes.values()]
            by_name = {f"{m.host}:{m.port}": m for m in masters}
            conn = nodes[move.source].redis_connection.connection_pool.connection_kwargs
            keys = migrate_slot(
                move.slot,
                by_name[move.source],
                by_name[move.target],
                masters,
                password=conn.get("password"),
                username=conn.get("username"),
                batch=batch,
                pause_s=pause_s,
            )
            cluster.nodes_manager.initialize()  # type: ignore[attr-defined]
            made.append(Move(move.shard, move.slot, move.source, move.target, keys))
            log.info(
                "moved shard %s (slot %d, %d keys) %s -> %s", move.shard, move.slot, keys, move.source, move.target
            )
        return made

    @staticmethod
    def _slot_node(node: object) -> SlotNode:
        client: redis.Redis = node.redis_connection  # type: ignore[attr-defined]
        node_id = client.execute_command("CLUSTER", "MYID")  # type: ignore[no-untyped-call]
        return SlotNode(client, as_str(node_id), node.host, int(node.port))  # type: ignore[attr-defined]
