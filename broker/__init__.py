"""The queue: key layout, Lua scripts, producer API, text segmentation, claiming."""

from broker.claim import Claimed, Claimer, Completion
from broker.producer import PRIORITIES, AsyncProducer, EnqueueResult, Producer, prepare
from broker.segment import Segment, segment_text

__all__ = [
    "PRIORITIES",
    "AsyncProducer",
    "Claimed",
    "Claimer",
    "Completion",
    "EnqueueResult",
    "Producer",
    "Segment",
    "prepare",
    "segment_text",
]
