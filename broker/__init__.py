"""The queue: key layout, Lua scripts, producer API, segmentation, fair claiming, tenants, statistics."""

from broker.claim import Claimed, Claimer, Completion
from broker.producer import PRIORITIES, AsyncProducer, EnqueueResult, Producer, prepare
from broker.scheduler import SCHEDULER, SchedulerParams
from broker.segment import Segment, segment_text
from broker.stats import LaneStats, Stats, TenantStats
from broker.tenants import BUILTIN_DEFAULT, DefaultPolicy, TenantPolicy, Tenants

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
