"""Cancelling a request: flag it in the shard (atomically), then end its audio stream with a cancelled marker.

Workers check the flag before a segment and between frames: queued segments are
dropped without synthesis and a segment in progress stops at the next frame
boundary. The end marker is written here, at once, so a listener stops without
waiting for the workers.
"""

from __future__ import annotations

import redis
import redis.asyncio as aredis

from broker.scripts import CANCEL, script_source
from chorus_client.constants import CANCELLED_AUDIO_TTL_S, EndStatus
from chorus_client.keys import Keys
from chorus_client.protocol import EndFrame, encode_frame
from shared.errors import RequestNotFound

__all__ = ["async_cancel", "cancel"]


def _outcome(res: int, request_id: str) -> bool:
    """``lua/cancel.lua``'s reply: 1 now cancelled, 0 already ended, -1 unknown (RequestNotFound)."""
    if res < 0:
        raise RequestNotFound(request_id)
    return res == 1


def _end_marker(segments: int) -> dict[str, bytes]:
    return {"f": encode_frame(EndFrame(segments, EndStatus.CANCELLED.value))}


def cancel(client: redis.Redis, request_id: str, keys: Keys | None = None) -> bool:
    """True when the request is now cancelled; False when it had already ended (done, failed or cancelled).

    The request's audio stream then ends with a ``cancelled`` end frame and expires after
    ``CANCELLED_AUDIO_TTL_S`` seconds. Raises :class:`~shared.errors.RequestNotFound` for an
    unknown or expired request (or an id that is not a request id).
    """
    keys = (keys or Keys()).for_request(request_id)
    if not _outcome(int(client.register_script(script_source(CANCEL))(keys=[keys.request(request_id)])), request_id):
        return False
    segments = int(client.hget(keys.request(request_id), "segments") or 0)
    pipe = client.pipeline(transaction=False)
    pipe.xadd(keys.audio(request_id), _end_marker(segments))  # type: ignore[arg-type]
    pipe.expire(keys.audio(request_id), CANCELLED_AUDIO_TTL_S)
    pipe.execute()
    return True


async def async_cancel(client: aredis.Redis, request_id: str, keys: Keys | None = None) -> bool:
    """:func:`cancel` for asyncio clients."""
    keys = (keys or Keys()).for_request(request_id)
    res = int(await client.register_script(script_source(CANCEL))(keys=[keys.request(request_id)]))
    if not _outcome(res, request_id):
        return False
    segments = int(await client.hget(keys.request(request_id), "segments") or 0)
    pipe = client.pipeline(transaction=False)
    pipe.xadd(keys.audio(request_id), _end_marker(segments))  # type: ignore[arg-type]
    pipe.expire(keys.audio(request_id), CANCELLED_AUDIO_TTL_S)
    await pipe.execute()
    return True
