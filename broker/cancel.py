"""Cancel a request, sync or asyncio: the client's cancel operation run on a server connection.

See :func:`chorus_client.control.cancel`: the request is flagged (workers drop its
queued segments and stop the one in progress at the next frame) and its audio
stream ends with a ``cancelled`` end frame that expires after ``CANCELLED_AUDIO_TTL_S``.
"""

from __future__ import annotations

import redis
import redis.asyncio as aredis

from chorus_client.control import cancel as cancel_op
from chorus_client.drive import run_async, run_sync
from chorus_client.keys import Keys

__all__ = ["async_cancel", "cancel"]


def cancel(client: redis.Redis, request_id: str, keys: Keys | None = None) -> bool:
    """True when the request is now cancelled; False when it had already ended (done, failed or cancelled).
    Raises :class:`~shared.errors.RequestNotFound` for an unknown or expired request (or an id that is
    not a request id)."""
    return run_sync(client, cancel_op(keys or Keys(), request_id))


async def async_cancel(client: aredis.Redis, request_id: str, keys: Keys | None = None) -> bool:
    """:func:`cancel` for asyncio clients."""
    return await run_async(client, cancel_op(keys or Keys(), request_id))
