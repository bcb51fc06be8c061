"""Property tests: the protocol decoders never crash; every rejection is a ProtocolError; valid data round-trips."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus_client.protocol import (
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

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True),
    st.text(max_size=40), st.binary(max_size=40),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
SEGMENT_KEYS = ["v", "req", "seq", "text", "voice", "lang", "speed", "pause_ms", "t"]
FRAME_KEYS = ["v", "t", "seg", "idx", "last", "sr", "att", "pcm", "code", "msg", "segments", "status", "req", "voice"]


def _maps(keys: list[str]) -> st.SearchStrategy[bytes]:
    """msgpack maps that look like ours: known keys (some), foreign keys, wrong types and sizes."""
    known = st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))
    keys_ = st.one_of(st.text(max_size=6), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=4))
    foreign = st.dictionaries(keys_, values, max_size=3)
    return st.builds(lambda a, b: msgpack.packb({**b, **a}, use_bin_type=True), known, foreign)


raw_bytes = st.one_of(st.binary(max_size=300), _maps(SEGMENT_KEYS), _maps(FRAME_KEYS))


@settings(max_examples=400, deadline=None)
@given(raw_bytes)
def test_segment_decoder_never_crashes(data: bytes) -> None:
    try:
        job = decode_segment(data)
    except ProtocolError as exc:
        assert exc.field and exc.reason
    else:
        assert decode_segment(encode_segment(job)) == job


@settings(max_examples=400, deadline=None)
@given(st.one_of(raw_bytes, _maps(FRAME_KEYS)))
def test_frame_decoder_never_crashes(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except ProtocolError as exc:
        assert exc.field and exc.reason
    else:
        assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.binary(max_size=16))
def test_truncated_or_padded_valid_data_is_rejected_or_equal(valid_tail: bytes, junk: bytes) -> None:
    good = encode_segment(SegmentJob("s0." + "A" * 22, 3, "你好", "jm_kumo", "zh", 1.0, 0, 1))
    for data in (good[: len(good) // 2], good + junk, junk + good):
        try:
            job = decode_segment(data)
        except ProtocolError:
            continue
        assert job.text == "你好"


frames = st.one_of(
    st.builds(AudioFrame, st.integers(0, 2047), st.integers(0, 10_000), st.booleans(), st.sampled_from([22050, 24000]),
              st.binary(max_size=4800).map(lambda b: b[: len(b) // 2 * 2]), st.integers(1, 100)),
    st.builds(ErrorFrame, st.sampled_from(["synthesis_failed", "deadline_exceeded"]), st.text(max_size=200),
              st.one_of(st.none(), st.integers(0, 2047))),
    st.builds(EndFrame, st.integers(1, 2048), st.sampled_from(["ok", "error", "cancelled"])),
    st.builds(HeaderFrame, st.just("s0." + "B" * 22), st.integers(1, 2048), st.just("jm_kumo"), st.just(24000),
              st.just("t")),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(frames)
def test_every_frame_round_trips(frame: object) -> None:
    assert decode_frame(encode_frame(frame)) == frame  # type: ignore[arg-type]
