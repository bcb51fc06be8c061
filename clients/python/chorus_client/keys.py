"""Every Redis key name chorus uses; no key string is formatted anywhere else.

Keys of one shard share the hash tag ``{<shard>}`` so the enqueue and claim
scripts each run on one Redis Cluster node. A deployment has ``N`` shards
``s0 … sN-1`` (``<prefix>:shards``, 1 when absent); a tenant's home shard is
:func:`home_shard` of its name, unless an entry in that shard forwards it
(``chorus_client.placement``). A request's audio stream has its own
tag ``{r:<request>}`` so audio traffic spreads over the cluster. Request ids
carry their shard (``<shard>.<token>``), so any component finds a request's keys
from its id alone.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from chorus_client.constants import DEFAULT_PREFIX, DEFAULT_SHARD, LANES, MAX_SHARDS
from chorus_client.errors import ConfigError, InvalidRequest, RequestNotFound, UnknownTenant

__all__ = [
    "GROUP",
    "LANES",
    "Keys",
    "fnv1a32",
    "home_shard",
    "new_request_id",
    "shard_name",
    "shard_names",
    "shard_of",
    "validate_shard",
    "validate_tenant",
]

GROUP = "workers"
"""Consumer group that every worker joins on every lane stream."""

_TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SHARD_RE = re.compile(r"^[a-z0-9]{1,8}$")
_REQUEST_RE = re.compile(r"^([a-z0-9]{1,8})\.([A-Za-z0-9_-]{22})$")


def validate_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
        raise UnknownTenant(str(tenant), f"tenant names match {_TENANT_RE.pattern}")
    return tenant


def validate_shard(shard: str) -> str:
    """``shard`` when it is a shard name (``[a-z0-9]{1,8}``); ConfigError otherwise."""
    if not isinstance(shard, str) or not _SHARD_RE.fullmatch(shard):
        raise ConfigError(f"shard {shard!r} must match {_SHARD_RE.pattern}")
    return shard


def shard_name(index: int) -> str:
    """The name of shard ``index``: ``s<index>``."""
    return f"s{index}"


def _shard_count(count: int) -> int:
    """``count`` when it is a shard count (an integer within 1..MAX_SHARDS); ConfigError otherwise."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"a deployment has 1..{MAX_SHARDS} shards, not {count!r}")
    return count


def shard_names(count: int) -> list[str]:
    """``s0 … s<count-1>``; ConfigError for a count outside 1..MAX_SHARDS."""
    return [shard_name(i) for i in range(_shard_count(count))]


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a of ``data`` (offset basis 2166136261, prime 16777619): a hash every language
    writes in four lines, so every client places a tenant the same way (docs/PROTOCOL.md)."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def home_shard(tenant: str, count: int) -> str:
    """The shard a tenant lives in unless a forward entry there says otherwise:
    ``s<fnv1a32(utf-8 name) mod count>``."""
    return shard_name(fnv1a32(validate_tenant(tenant).encode()) % _shard_count(count))


def new_request_id(shard: str = DEFAULT_SHARD) -> str:
    """An unguessable id (128 random bits) that names its shard."""
    return f"{shard}.{secrets.token_urlsafe(16)}"


def shard_of(request_id: str) -> str:
    m = _REQUEST_RE.fullmatch(request_id) if isinstance(request_id, str) else None
    if not m:
        raise RequestNotFound(str(request_id))
    return m.group(1)


@dataclass(frozen=True)
class Keys:
    """Key names of one deployment (prefix) and one shard."""

    prefix: str = DEFAULT_PREFIX
    shard: str = DEFAULT_SHARD

    def __post_init__(self) -> None:
        validate_shard(self.shard)

    def of_shard(self, shard: str) -> Keys:
        """The keys of another shard of this deployment."""
        return Keys(self.prefix, shard)

    def shards(self) -> str:
        """String: the deployment's shard count N (shards ``s0 … sN-1``); absent means 1. Written by
        ``chorus shards grow``; read by producers (cached) and by workers at every heartbeat."""
        return f"{self.prefix}:shards"

    @property
    def _s(self) -> str:
        return f"{self.prefix}:{{{self.shard}}}"

    def queue_prefix(self) -> str:
        """Prefix of the lane streams, completed in Lua as ``<prefix><tenant>:<lane>``."""
        return f"{self._s}:q:"

    def queue(self, tenant: str, lane: str) -> str:
        if lane not in LANES:
            raise InvalidRequest("lane", f"unknown lane {lane!r}; lanes are {', '.join(LANES)}")
        return f"{self.queue_prefix()}{validate_tenant(tenant)}:{lane}"

    def enqueue_keys(self, tenant: str, request_key: str) -> list[str]:
        """KEYS of ``lua/enqueue.lua``, in order: the request hash (``request_key``, normally
        :meth:`request`), depth, active, active set, wake, the tenant's three lane streams in
        :data:`LANES` order, tenants, drr, fresh (docs/PROTOCOL.md)."""
        return [
            request_key,
            self.depth(),
            self.active(),
            self.active_set(),
            self.wake(),
            *(self.queue(tenant, lane) for lane in LANES),
            self.tenants(),
            self.drr(),
            self.fresh(),
        ]

    def tenants(self) -> str:
        """Hash tenant -> policy JSON; field ``*`` holds the default policy."""
        return f"{self._s}:tenants"

    def drr(self) -> str:
        """Scheduler state: ``<tenant>:d`` deficit (us), ``:f`` in flight, ``:p`` parked,
        ``:b`` batch streak; ``~rate`` (us per char) and ``~q`` (quantum, us)."""
        return f"{self._s}:drr"

    def served(self) -> str:
        """Hash of cumulative work: ``<tenant>:<lane>:n`` segments, ``<tenant>:<lane>:us`` worker time."""
        return f"{self._s}:served"

    def busy(self, bucket: int) -> str:
        """Worker time per ``<tenant>:<lane>`` in one time bucket (see ``broker.stats``)."""
        return f"{self._s}:busy:{int(bucket)}"

    def active(self) -> str:
        """The ring: tenants with queued work and credit to earn, in round-robin order."""
        return f"{self._s}:active"

    def fresh(self) -> str:
        """Tenants that just became active after idling, served before :meth:`active` (FIFO)."""
        return f"{self._s}:active:fresh"

    def active_set(self) -> str:
        """Every tenant with queued work: on :meth:`fresh`, on :meth:`active`, or parked at its cap."""
        return f"{self._s}:active:set"

    def depth(self) -> str:
        """Hash of undelivered segment counts: ``<tenant>`` and ``<tenant>:<lane>``."""
        return f"{self._s}:depth"

    def leases(self) -> str:
        """Sorted set ``<tenant>|<lane>|<entry id>`` -> lease expiry (ms) of every segment in flight."""
        return f"{self._s}:leases"

    def finishing(self) -> str:
        """Sorted set request id -> deadline (ms) for writing its end marker (a worker may die first)."""
        return f"{self._s}:finishing"

    def wake(self) -> str:
        return f"{self._s}:wake"

    def history(self) -> str:
        """Capped stream of forgotten tenants' served totals (``tenant last <lane>:n <lane>:us``)."""
        return f"{self._s}:history"

    def sweep_lock(self) -> str:
        """String with an expiry: the worker sweeping the shard's lane streams this period."""
        return f"{self._s}:sweep"

    def dead(self) -> str:
        return f"{self._s}:dead"

    def request(self, request_id: str) -> str:
        self._check_shard(request_id)
        return f"{self._s}:req:{request_id}"

    def audio(self, request_id: str) -> str:
        shard_of(request_id)
        return f"{self.prefix}:{{r:{request_id}}}:audio"

    def workers(self) -> str:
        """Sorted set of worker ids scored by last heartbeat (ms)."""
        return f"{self.prefix}:workers"

    def worker_info(self) -> str:
        """Hash worker id -> JSON description (models, device, threads)."""
        return f"{self.prefix}:workers:info"

    def voices(self) -> str:
        """Hash voice -> JSON ``{"lang", "sample_rate", "model", "version"}`` of every voice a worker
        serves (written by workers at start and on activation; read by clients before an enqueue)."""
        return f"{self.prefix}:voices"

    def api_keys(self) -> str:
        """Hash SHA-256(api key) -> JSON {tenant, name, created}; the keys themselves are never stored."""
        return f"{self.prefix}:apikeys"

    def models_active(self) -> str:
        """Hash model id -> the version every worker should serve (``chorus models activate``)."""
        return f"{self.prefix}:{{models}}:active"

    def models_floor(self) -> str:
        """Hash model id -> the highest version ever activated: the rollback floor every worker checks at start."""
        return f"{self.prefix}:{{models}}:floor"

    def _check_shard(self, request_id: str) -> None:
        if shard_of(request_id) != self.shard:
            raise RequestNotFound(request_id)

    def for_request(self, request_id: str) -> Keys:
        """The keys of the shard that owns ``request_id``."""
        return Keys(self.prefix, shard_of(request_id))
