"""The queue on Redis: producer API, segmentation, fair claiming, leases, completion, tenants, statistics.

Modules, one concern each: ``producer`` and ``segment`` (text in, segments queued),
``cancel``, ``claim`` (claiming and admission; :class:`Claimer`, the worker's one
handle), ``claimed`` (a claimed entry), ``lease`` (leases and heartbeats by the
server's clock), ``complete`` (completion, dead letters), ``sweep`` (repair and
forgetting idle tenants), ``scheduler`` (DRR parameters), ``policy`` (tenant
policies as data) and ``tenants`` (policies in Redis), ``stats``, and ``scripts``
with ``lua/*.lua``. Shared names and numbers come from :mod:`chorus_client.constants`.
"""

from broker.claim import Claimed, Claimer, Completion
from broker.policy import BUILTIN_DEFAULT, DefaultPolicy, TenantPolicy
from broker.producer import PRIORITIES, AsyncProducer, EnqueueResult, Producer, prepare
from broker.scheduler import SCHEDULER, SchedulerParams
from broker.stats import LaneStats, Stats, TenantStats
from broker.tenants import Tenants
from chorus_client.segment import Segment, segment_text

__all__ = [
    "BUILTIN_DEFAULT",
    "PRIORITIES",
    "SCHEDULER",
    "AsyncProducer",
    "Claimed",
    "Claimer",
    "Completion",
    "DefaultPolicy",
    "EnqueueResult",
    "LaneStats",
    "Producer",
    "SchedulerParams",
    "Segment",
    "Stats",
    "TenantPolicy",
    "TenantStats",
    "Tenants",
    "prepare",
    "segment_text",
]
