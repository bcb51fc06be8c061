"""chorus's light client: enqueue, listen, cancel and status, and the protocol they speak.

``Client`` / ``AsyncClient`` (:mod:`chorus_client.client`) are the API; the
modules under them are the wire protocol, key names, segmentation rules,
constants and errors.

Depends on ``redis`` and ``msgpack`` only. The chorus server imports these
modules too, so a client and a worker can never disagree on the protocol.
"""

from chorus_client.client import AsyncClient, AsyncRequest, Client, Request
from chorus_client.constants import LANES, EndStatus, Lane, RequestStatus, SegmentStatus
from chorus_client.control import RequestState
from chorus_client.enqueue import EnqueueResult, Voice
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
    "AsyncClient",
    "AsyncRequest",
    "AudioFrame",
    "ChorusError",
    "Client",
    "EndFrame",
    "EndStatus",
    "EnqueueResult",
    "ErrorFrame",
    "HeaderFrame",
    "Keys",
    "Lane",
    "LaneNotAllowed",
    "NoWorkers",
    "ProtocolError",
    "QueueFull",
    "RedisUnavailable",
    "Request",
    "RequestCancelled",
    "RequestFailed",
    "RequestNotFound",
    "RequestState",
    "RequestStatus",
    "RequestTooLarge",
    "Segment",
    "SegmentJob",
    "SegmentStatus",
    "StreamTimeout",
    "TextError",
    "UnknownTenant",
    "UnknownVoice",
    "Voice",
    "new_request_id",
    "segment_text",
    "shard_of",
]
