"""The listener's handling of failed segments: stop at the first error frame (default) or skip it."""

from __future__ import annotations

import pytest

from chorus_client.errors import RequestFailed
from chorus_client.listen import StreamState
from chorus_client.protocol import AudioFrame, EndFrame, ErrorFrame, Frame, HeaderFrame, encode_frame

RID = "s0.AAAAAAAAAAAAAAAAAAAAAA"


def _audio(seg: int, idx: int, last: bool = False, att: int = 1) -> AudioFrame:
    return AudioFrame(seg, idx, last, 24000, b"\x00\x01" * 4, att)


def _play(state: StreamState, frames: list[Frame]) -> tuple[list[tuple[int, int]], RequestFailed | None]:
    """Feed one entry at a time as XREAD would hand them; what is played, and what is raised at the end."""
    played: list[tuple[int, int]] = []
    for n, frame in enumerate(frames, start=1):
        out = state.feed([(f"1-{n}".encode(), {b"f": encode_frame(frame)})])
        played += [(f.segment, f.index) for f in out]
        try:
            state.check_complete()
        except RequestFailed as exc:
            return played, exc
        if state.error is not None:
            break
    return played, None


# segment 1 fails after one frame of its first attempt; its error frame arrives before segment 0 is out
STREAM: list[Frame] = [
    HeaderFrame(RID, 3, "jm_kumo", 24000, "acme"),
    _audio(1, 0),
    _audio(0, 0),
    ErrorFrame("synthesis_failed", "boom", 1),
    _audio(2, 0),
    _audio(0, 1, last=True),
    _audio(2, 1, last=True),
    EndFrame(3, "error"),
]


def test_default_stops_at_the_first_error_frame() -> None:
    played, err = _play(StreamState(RID), STREAM)
    assert played == [(0, 0)], "the frames ready before the error frame, then nothing"
    assert err is not None and err.code == "synthesis_failed" and err.segment == 1


def test_skip_mode_hears_every_other_segment_then_reports_the_failure() -> None:
    state = StreamState(RID, skip_failed=True)
    played, err = _play(state, STREAM)
    assert played == [(0, 0), (0, 1), (2, 0), (2, 1)], "segment 1 skipped, its held frame dropped"
    assert err is not None and err.segment == 1 and err.code == "synthesis_failed"
    assert [f.segment for f in state.failures] == [1] and state.order.skipped == 1
    assert state.finished


def test_skip_mode_does_not_skip_an_error_of_the_whole_request() -> None:
    frames: list[Frame] = [_audio(0, 0), ErrorFrame("request_lost", "gone", None), EndFrame(1, "error")]
    played, err = _play(StreamState(RID, skip_failed=True), frames)
    assert played == [(0, 0)] and err is not None and err.code == "request_lost"


@pytest.mark.parametrize("skip", [False, True])
def test_a_clean_stream_is_the_same_in_both_modes(skip: bool) -> None:
    frames: list[Frame] = [_audio(0, 0), _audio(1, 0, last=True), _audio(0, 1, last=True), EndFrame(2, "ok")]
    state = StreamState(RID, skip_failed=skip)
    played, err = _play(state, frames)
    assert played == [(0, 0), (0, 1), (1, 0)] and err is None and state.finished
