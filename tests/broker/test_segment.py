"""Segmentation: clause boundaries, breaks, a short first segment, bounded sizes, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.segment import FIRST_MAX_CHARS, MAX_CHARS, segment_text, weight
from shared.errors import TextError
from shared.protocol import MAX_REQUEST_TEXT_BYTES

HELLO = "你好，世界！今天天气很好，我们一起去公园散步吧。"


def test_first_segment_is_the_first_clause() -> None:
    segs = segment_text(HELLO)
    assert segs[0].text == "你好，"
    assert "".join(s.text for s in segs) == HELLO


@pytest.mark.parametrize("mark", [*"，。？！；：、", ", ", ". ", "? ", "! ", "; ", ": ", "\n"])
def test_every_clause_mark_splits(mark: str) -> None:
    segs = segment_text(f"第一句{mark}第二句")
    assert segs[0].text == f"第一句{mark}".strip()
    assert segs[1].text == "第二句"


def test_ascii_marks_inside_numbers_do_not_split() -> None:
    segs = segment_text("价格是12.5元，时间3:30，共1,000个")
    assert segs[0].text == "价格是12.5元，"
    assert "3:30" in segs[1].text and "1,000" in segs[1].text


def test_break_becomes_a_pause_after_the_clause() -> None:
    segs = segment_text('你好<break time="250ms"/>世界<break time="1.5s"/>')
    assert [(s.text, s.pause_ms) for s in segs] == [("你好", 250), ("世界", 1500)]


def test_leading_break_is_a_pure_pause_segment() -> None:
    segs = segment_text('<break time="1s"/>你好')
    assert (segs[0].text, segs[0].pause_ms) == ("", 1000)


@pytest.mark.parametrize("tag", ['<break time="fast"/>', "<break/>", '<break time="20s"/>'])
def test_malformed_or_huge_break_is_a_clear_error(tag: str) -> None:
    with pytest.raises(TextError, match="break"):
        segment_text(f"你好{tag}")


def test_segments_grow_and_stay_under_the_cap() -> None:
    text = "，".join(["今天天气很好我们去公园"] * 60) + "。"
    segs = segment_text(text)
    sizes = [weight(s.text) for s in segs]
    assert sizes[0] <= FIRST_MAX_CHARS
    assert max(sizes) <= MAX_CHARS
    assert sizes[1] < sizes[3] <= MAX_CHARS  # later segments are larger
    assert len(segs) < 30


def test_overlong_clause_without_punctuation_is_cut() -> None:
    segs = segment_text("一" * 1000)
    assert all(weight(s.text) <= MAX_CHARS for s in segs)
    assert sum(len(s.text) for s in segs) == 1000


def test_nfc_normalisation() -> None:
    assert segment_text("cafe\u0301")[0].text == "caf\u00e9"


@pytest.mark.parametrize("text", ["", "   \n\t", '<break time="1s"/>', "\n\n"])
def test_nothing_to_speak_is_rejected(text: str) -> None:
    with pytest.raises(TextError, match="nothing to speak"):
        segment_text(text)


def test_huge_text_is_rejected_with_the_limit() -> None:
    with pytest.raises(TextError, match=str(MAX_REQUEST_TEXT_BYTES)):
        segment_text("好" * (MAX_REQUEST_TEXT_BYTES // 3 + 1))


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(TextError, match="Unicode"):
        segment_text("abc\udcff")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_segmenter_never_crashes_and_bounds_every_segment(text: str) -> None:
    try:
        segs = segment_text(text)
    except TextError:
        return
    assert segs and all(weight(s.text) <= MAX_CHARS for s in segs)
