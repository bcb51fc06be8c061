"""Wire protocol v1 (text revision 1.3): msgpack codecs for segment entries and audio frames.

docs/PROTOCOL.md is the normative text; this module implements it. Decoding is
strict: bounded sizes, no ext types, string keys only, typed fields, and a
:class:`~shared.errors.ProtocolError` naming the field for anything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import msgpack

from chorus_client.constants import EndStatus
from chorus_client.errors import ProtocolError

__all__ = [
    "MAX_ENTRY_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_REQUEST_TEXT_BYTES",
    "MAX_SEGMENTS",
    "MAX_SEGMENT_TEXT_BYTES",
    "PROTOCOL_VERSION",
    "AudioFrame",
    "EndFrame",
    "ErrorFrame",
    "Frame",
    "HeaderFrame",
    "SegmentJob",
    "decode_frame",
    "decode_segment",
    "encode_frame",
    "encode_segment",
    "peek_segment_address",
]

PROTOCOL_VERSION = 1
MAX_REQUEST_TEXT_BYTES = 64 * 1024
"""Largest request text (UTF-8 bytes) a producer accepts."""
MAX_SEGMENTS = 2048
"""Most segments one request may have."""
MAX_SEGMENT_TEXT_BYTES = 2048
"""Largest text of one segment (UTF-8 bytes)."""
MAX_ENTRY_BYTES = 8 * 1024
"""Largest encoded segment payload."""
MAX_FRAME_BYTES = 64 * 1024
"""Largest encoded frame (100 ms of 48 kHz PCM16 is 9,600 bytes)."""
MAX_PAUSE_MS = 10_000
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 192_000
"""The range of every ``sr`` (frames, and a payload's optional one)."""
MAX_ID_LEN = 64
MAX_VOICE_LEN = 64
MAX_MESSAGE_LEN = 1024

FRAME_HEADER = "header"
FRAME_AUDIO = "audio"
FRAME_ERROR = "error"
FRAME_END = "end"


def _ext_refused(code: int, data: bytes) -> Any:
    raise ProtocolError("payload", f"msgpack ext type {code} is not allowed")


def _unpack(data: bytes, limit: int, what: str) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(what, f"expected bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise ProtocolError(what, f"{len(data)} bytes exceeds the limit of {limit}")
    try:
        obj = msgpack.unpackb(
            bytes(data),
            raw=False,
            strict_map_key=True,
            ext_hook=_ext_refused,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=64,
            max_map_len=32,
        )
    except ProtocolError:
        raise
    except UnicodeDecodeError as exc:
        raise ProtocolError(what, f"invalid UTF-8 in a string: {exc.reason}") from None
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(what, f"not valid msgpack: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(what, f"expected a map, got {type(obj).__name__}")
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError("v", f"unsupported protocol version {version!r} (this side speaks {PROTOCOL_VERSION})")
    return obj


def _pack(obj: dict[str, Any]) -> bytes:
    out: bytes = msgpack.packb(obj, use_bin_type=True)
    return out


def _str(obj: dict[str, Any], key: str, max_len: int, *, empty_ok: bool = False) -> str:
    val = obj.get(key)
    if not isinstance(val, str):
        raise ProtocolError(key, f"expected a string, got {type(val).__name__}")
    if len(val) > max_len:
        raise ProtocolError(key, f"longer than {max_len} characters")
    if not val and not empty_ok:
        raise ProtocolError(key, "must not be empty")
    return val


def _int(obj: dict[str, Any], key: str, lo: int, hi: int) -> int:
    val = obj.get(key)
    if isinstance(val, bool) or not isinstance(val, int):
        raise ProtocolError(key, f"expected an integer, got {type(val).__name__}")
    if not lo <= val <= hi:
        raise ProtocolError(key, f"{val} outside [{lo}, {hi}]")
    return val


def _float(obj: dict[str, Any], key: str, lo: float, hi: float) -> float:
    val = obj.get(key)
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        raise ProtocolError(key, f"expected a number, got {type(val).__name__}")
    fval = float(val)
    if not math.isfinite(fval) or not lo <= fval <= hi:
        raise ProtocolError(key, f"{val} outside [{lo}, {hi}]")
    return fval


def _bool(obj: dict[str, Any], key: str) -> bool:
    val = obj.get(key)
    if not isinstance(val, bool):
        raise ProtocolError(key, f"expected a boolean, got {type(val).__name__}")
    return val


@dataclass(frozen=True)
class SegmentJob:
    """One segment of a request, as a lane stream entry carries it."""

    request_id: str
    seq: int
    """0-based index of the segment within its request."""
    text: str
    """Text to speak; may be empty when the segment is only a pause."""
    voice: str
    lang: str
    speed: float = 1.0
    pause_ms: int = 0
    """Silence appended after the speech (from ``<break>`` tags)."""
    enqueued_ms: int = 0
    sample_rate: int | None = None
    """The request's sample rate (payload ``sr``, v1.3), when the segment's voice has another one:
    the worker resamples this segment's audio to it. None: the voice's own rate (and no ``sr``)."""


def encode_segment(job: SegmentJob) -> bytes:
    obj: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "req": job.request_id,
        "seq": job.seq,
        "text": job.text,
        "voice": job.voice,
        "lang": job.lang,
        "speed": job.speed,
        "pause_ms": job.pause_ms,
        "t": job.enqueued_ms,
    }
    if job.sample_rate is not None:
        obj["sr"] = job.sample_rate
    return _pack(obj)


def decode_segment(data: bytes) -> SegmentJob:
    obj = _unpack(data, MAX_ENTRY_BYTES, "segment")
    text = _str(obj, "text", MAX_SEGMENT_TEXT_BYTES, empty_ok=True)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_TEXT_BYTES:
        raise ProtocolError("text", f"more than {MAX_SEGMENT_TEXT_BYTES} UTF-8 bytes")
    return SegmentJob(
        request_id=_str(obj, "req", MAX_ID_LEN),
        seq=_int(obj, "seq", 0, MAX_SEGMENTS - 1),
        text=text,
        voice=_str(obj, "voice", MAX_VOICE_LEN),
        lang=_str(obj, "lang", 16),
        speed=_float(obj, "speed", 0.25, 4.0),
        pause_ms=_int(obj, "pause_ms", 0, MAX_PAUSE_MS),
        enqueued_ms=_int(obj, "t", 0, 2**53),
        sample_rate=None if obj.get("sr") is None else _int(obj, "sr", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
    )


def peek_segment_address(data: bytes) -> tuple[str, int] | None:
    """``(request id, seq)`` of a segment payload that :func:`decode_segment` refuses, when those
    two fields are still readable (so the request's listener can be told which segment failed);
    None otherwise. Never raises."""
    try:
        obj = msgpack.unpackb(
            bytes(data[:MAX_ENTRY_BYTES]),
            raw=False,
            strict_map_key=False,
            ext_hook=_ext_refused,
            max_array_len=64,
            max_map_len=32,
        )
    except Exception:  # anything unreadable has no address
        return None
    if not isinstance(obj, dict):
        return None
    req, seq = obj.get("req"), obj.get("seq")
    if not isinstance(req, str) or len(req) > MAX_ID_LEN or isinstance(seq, bool) or not isinstance(seq, int):
        return None
    if not 0 <= seq < MAX_SEGMENTS:
        return None
    return req, seq


@dataclass(frozen=True)
class HeaderFrame:
    """First entry of an audio stream, written by the producer."""

    request_id: str
    segments: int
    voice: str
    sample_rate: int
    tenant: str


@dataclass(frozen=True)
class AudioFrame:
    """At most 100 ms of mono PCM16 little-endian audio."""

    segment: int
    index: int
    last: bool
    """True on the final frame of its segment."""
    sample_rate: int
    pcm: bytes
    attempt: int = 1


@dataclass(frozen=True)
class ErrorFrame:
    code: str
    message: str
    segment: int | None = None


@dataclass(frozen=True)
class EndFrame:
    segments: int
    status: str = EndStatus.OK
    """An :class:`~chorus_client.constants.EndStatus` value (a plain ``str`` once decoded)."""


Frame = Union[HeaderFrame, AudioFrame, ErrorFrame, EndFrame]  # noqa: UP007 - runtime alias on Python 3.10


def encode_frame(frame: Frame) -> bytes:
    if isinstance(frame, AudioFrame):
        return _pack(
            {
                "v": PROTOCOL_VERSION,
                "t": FRAME_AUDIO,
                "seg": frame.segment,
                "idx": frame.index,
                "last": frame.last,
                "sr": frame.sample_rate,
                "att": frame.attempt,
                "pcm": frame.pcm,
            }
        )
    if isinstance(frame, HeaderFrame):
        return _pack(
            {
                "v": PROTOCOL_VERSION,
                "t": FRAME_HEADER,
                "req": frame.request_id,
                "segments": frame.segments,
                "voice": frame.voice,
                "sr": frame.sample_rate,
                "tenant": frame.tenant,
                "format": "s16le",
                "channels": 1,
            }
        )
    if isinstance(frame, ErrorFrame):
        return _pack(
            {
                "v": PROTOCOL_VERSION,
                "t": FRAME_ERROR,
                "code": frame.code[:MAX_ID_LEN],
                "msg": frame.message[:MAX_MESSAGE_LEN],
                "seg": frame.segment,
            }
        )
    return _pack({"v": PROTOCOL_VERSION, "t": FRAME_END, "segments": frame.segments, "status": str(frame.status)})


def decode_frame(data: bytes) -> Frame:
    obj = _unpack(data, MAX_FRAME_BYTES, "frame")
    kind = obj.get("t")
    if kind == FRAME_AUDIO:
        pcm = obj.get("pcm")
        if not isinstance(pcm, bytes):
            raise ProtocolError("pcm", f"expected bytes, got {type(pcm).__name__}")
        if len(pcm) % 2:
            raise ProtocolError("pcm", "odd byte count for PCM16")
        return AudioFrame(
            segment=_int(obj, "seg", 0, MAX_SEGMENTS - 1),
            index=_int(obj, "idx", 0, 2**31),
            last=_bool(obj, "last"),
            sample_rate=_int(obj, "sr", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            pcm=pcm,
            attempt=_int(obj, "att", 1, 1000),
        )
    if kind == FRAME_HEADER:
        return HeaderFrame(
            request_id=_str(obj, "req", MAX_ID_LEN),
            segments=_int(obj, "segments", 1, MAX_SEGMENTS),
            voice=_str(obj, "voice", MAX_VOICE_LEN),
            sample_rate=_int(obj, "sr", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            tenant=_str(obj, "tenant", MAX_ID_LEN),
        )
    if kind == FRAME_ERROR:
        seg = obj.get("seg")
        return ErrorFrame(
            code=_str(obj, "code", MAX_ID_LEN),
            message=_str(obj, "msg", MAX_MESSAGE_LEN, empty_ok=True),
            segment=None if seg is None else _int(obj, "seg", 0, MAX_SEGMENTS - 1),
        )
    if kind == FRAME_END:
        return EndFrame(segments=_int(obj, "segments", 1, MAX_SEGMENTS), status=_str(obj, "status", 32))
    raise ProtocolError("t", f"unknown frame type {kind!r}")
