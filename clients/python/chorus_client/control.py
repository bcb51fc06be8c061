"""Cancelling a request and reading its status: sans-I/O operations (see :mod:`chorus_client.drive`).

Cancel runs ``cancel.lua`` (flag the request: workers drop its queued segments and stop
the one in progress at the next frame), then, when it was not finished, ends the audio
stream with a ``cancelled`` end frame that expires after ``CANCELLED_AUDIO_TTL_S``.
Status reads the request hash: ``status`` (a :class:`~chorus_client.constants.RequestStatus`),
``segments``, ``done`` (segments completed, failed ones included) and ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_client.constants import CANCELLED_AUDIO_TTL_S, EndStatus, RequestStatus
from chorus_client.drive import Command, Op, Transaction
from chorus_client.errors import ProtocolError, RequestNotFound
from chorus_client.keys import Keys
from chorus_client.protocol import EndFrame, encode_frame
from chorus_client.scripts import CANCEL

__all__ = ["RequestState", "cancel", "status"]


@dataclass(frozen=True)
class RequestState:
    request_id: str
    status: RequestStatus
    segments: int
    """Segments the request was cut into."""
    done: int
    """Segments completed so far (failed ones included)."""
    failed: int
    """Segments that ended with an error frame."""

    @property
    def finished(self) -> bool:
        return self.status.final


def cancel(keys: Keys, request_id: str) -> Op[bool]:
    """True when the request is now cancelled; False when it had already ended (done, failed or
    cancelled). RequestNotFound for an unknown or expired request (or an id that is not one)."""
    keys = keys.for_request(request_id)
    request_key = keys.request(request_id)
    res = int((yield from CANCEL.call({"request": request_key})))
    if res < 0:
        raise RequestNotFound(request_id)
    if res == 0:
        return False
    # at least 1: an end frame counts segments from 1 (the hash may vanish in between: FLUSHALL, expiry)
    segments = max(1, int((yield Command(("HGET", request_key, "segments"))) or 0))
    end = encode_frame(EndFrame(segments, EndStatus.CANCELLED.value))
    audio = keys.audio(request_id)
    yield Transaction((Command(("XADD", audio, "*", "f", end)), Command(("EXPIRE", audio, CANCELLED_AUDIO_TTL_S))))
    return True


def status(keys: Keys, request_id: str) -> Op[RequestState]:
    """The request's state; RequestNotFound when it is unknown or has expired."""
    keys = keys.for_request(request_id)
    raw = yield Command(("HMGET", keys.request(request_id), "status", "segments", "done", "failed"))
    if not raw or raw[0] is None:
        raise RequestNotFound(request_id)
    try:
        value = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
        return RequestState(request_id, RequestStatus(value), *(int(v or 0) for v in raw[1:]))
    except ValueError as exc:
        raise ProtocolError(keys.request(request_id), f"not a request hash: {exc}") from None
