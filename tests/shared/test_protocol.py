"""Wire protocol v1: round trips, and a clear ProtocolError for anything malformed."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus_client.protocol import (
    MAX_ENTRY_BYTES,
    AudioFrame,
    EndFrame,
    ErrorFrame,
    HeaderFrame,
    SegmentJob,
    decode_frame,
    decode_segment,
    encode_frame,
    encode_segment,
)
from shared.errors import ProtocolError

JOB = SegmentJob("s0.AAAAAAAAAAAAAAAAAAAAAA", 3, "你好，", "jm_kumo", "zh", 1.0, 250, 1700000000000)


def _payload(**override: object) -> bytes:
    base = msgpack.unpackb(encode_segment(JOB), raw=False)
    base.update(override)
    return msgpack.packb({k: v for k, v in base.items() if v is not ...}, use_bin_type=True)


def test_segment_round_trip() -> None:
    assert decode_segment(encode_segment(JOB)) == JOB


@pytest.mark.parametrize(
    "frame",
    [
        AudioFrame(2, 7, True, 24000, b"\x01\x00" * 10, attempt=2),
        HeaderFrame("s0.AAAAAAAAAAAAAAAAAAAAAA", 4, "jm_kumo", 24000, "acme"),
        ErrorFrame("synthesis_failed", "boom", 1),
        ErrorFrame("malformed_entry", "bad", None),
        EndFrame(4, "ok"),
    ],
)
def test_frame_round_trip(frame: object) -> None:
    assert decode_frame(encode_frame(frame)) == frame  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\xc1", "segment"),  # never-used msgpack byte
        (msgpack.packb([1, 2]), "segment"),
        (_payload(v=2), "v"),
        (_payload(v=...), "v"),
        (_payload(seq="3"), "seq"),
        (_payload(seq=-1), "seq"),
        (_payload(seq=True), "seq"),
        (_payload(speed=float("nan")), "speed"),
        (_payload(speed=100.0), "speed"),
        (_payload(text=b"bytes"), "text"),
        (_payload(req=""), "req"),
        (_payload(voice=None), "voice"),
        (_payload(pause_ms=10**9), "pause_ms"),
        (b"\x00" * (MAX_ENTRY_BYTES + 1), "segment"),
        (msgpack.packb({"v": 1, "text": msgpack.ExtType(5, b"x")}), "payload"),
    ],
)
def test_malformed_segment_is_rejected_with_the_field(data: bytes, field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_segment(data)
    assert info.value.field == field
    assert field in str(info.value)


def test_invalid_utf8_in_text_is_a_protocol_error() -> None:
    raw = encode_segment(JOB).replace("你好".encode(), b"\xff\xfe\xfd\xfc\xfb\xfa")
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_segment(raw)


def test_unknown_frame_type_and_odd_pcm_are_rejected() -> None:
    with pytest.raises(ProtocolError, match="unknown frame type"):
        decode_frame(msgpack.packb({"v": 1, "t": "video"}))
    odd = msgpack.packb({"v": 1, "t": "audio", "seg": 0, "idx": 0, "last": True, "sr": 24000, "att": 1, "pcm": b"abc"})
    with pytest.raises(ProtocolError, match="odd byte count"):
        decode_frame(odd)


def test_error_frame_message_is_bounded_on_encode() -> None:
    frame = decode_frame(encode_frame(ErrorFrame("x", "m" * 5000, None)))
    assert isinstance(frame, ErrorFrame) and len(frame.message) == 1024


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_decoders_never_crash_on_random_bytes(data: bytes) -> None:
    for decode in (decode_segment, decode_frame):
        try:
            decode(data)
        except ProtocolError:
            pass
