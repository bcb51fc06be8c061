"""Cancelling a request: flag it in the shard (atomically), then end its audio stream with a cancelled marker.

Workers check the flag before a segment and between frames: queued segments are
dropped without synthesis and a segment in progress stops at the next frame
boundary. The end marker is written here, at once, so a listener stops without
waiting for the workers.
"""

from __future__ import annotations

import redis

from broker.scripts import CANCEL, script_source
from shared.errors import RequestNotFound
from shared.keys import Keys
from shared.protocol import EndFrame, encode_frame

__all__ = ["CANCELLED_AUDIO_TTL_S", "cancel"]

CANCELLED_AUDIO_TTL_S = 300


def cancel(client: redis.Redis, request_id: str, keys: Keys | None = None) -> bool:
    """True when the request is now cancelled; False when it had already ended.

    :class:`RequestNotFound` for an unknown or expired request.
    """
    keys = (keys or Keys()).for_request(request_id)
    res = int(client.register_script(script_source(CANCEL))(keys=[keys.request(request_id)]))
    if res < 0:
        raise RequestNotFound(request_id)
    if res == 0:
        return False
    segments = int(client.hget(keys.request(request_id), "segments") or 0)
    audio = keys.audio(request_id)
    pipe = client.pipeline(transaction=False)
    pipe.xadd(audio, {"f": encode_frame(EndFrame(segments, "cancelled"))})
    pipe.expire(audio, CANCELLED_AUDIO_TTL_S)
    pipe.execute()
    return True
