"""chorus's light client: the wire protocol, key names, segmentation rules, constants and errors.

Depends on ``redis`` and ``msgpack`` only. The chorus server imports these
modules too, so a client and a worker can never disagree on the protocol.
"""

from chorus_client.constants import LANES, EndStatus, Lane, RequestStatus, SegmentStatus
from chorus_client.errors import (
    ChorusError,
    LaneNotAllowed,
    NoWorkers,
    ProtocolError,
    QueueFull,
    RedisUnavailable,
    RequestCancelled,
    RequestFailed,
    RequestNotFound,
    RequestTooLarge,
    StreamTimeout,
    TextError,
    UnknownTenant,
    UnknownVoice,
)
from chorus_client.keys import Keys, new_request_id, shard_of
from chorus_client.protocol import PROTOCOL_VERSION, AudioFrame, EndFrame, ErrorFrame, HeaderFrame, SegmentJob
from chorus_client.segment import Segment, segment_text

__all__ = [
    "LANES",
    "PROTOCOL_VERSION",
    "AudioFrame",
    "ChorusError",
    "EndFrame",
    "EndStatus",
    "ErrorFrame",
    "HeaderFrame",
    "Keys",
    "Lane",
    "LaneNotAllowed",
    "NoWorkers",
    "ProtocolError",
    "QueueFull",
    "RedisUnavailable",
    "RequestCancelled",
    "RequestFailed",
    "RequestNotFound",
    "RequestStatus",
    "RequestTooLarge",
    "Segment",
    "SegmentJob",
    "SegmentStatus",
    "StreamTimeout",
    "TextError",
    "UnknownTenant",
    "UnknownVoice",
    "new_request_id",
    "segment_text",
    "shard_of",
]
