"""Segmentation: clause boundaries, breaks, a short first segment, bounded sizes, clear errors."""

from __future__ import annotations

import sys
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus_client.protocol import MAX_REQUEST_TEXT_BYTES, MAX_SEGMENT_TEXT_BYTES
from chorus_client.segment import FIRST_MAX_CHARS, MAX_CHARS, presegmented, segment_text, weight
from shared.errors import TextError

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


NOTHING_TO_SPEAK = ["😀😀", "\x01\x02", "。。。", "\u200b", "!?...", "\u3000\u200d", '<break time="1s"/>。', "♪ → ©"]


@pytest.mark.parametrize("text", ["", "   \n\t", '<break time="1s"/>', "\n\n", *NOTHING_TO_SPEAK])
def test_nothing_to_speak_is_rejected(text: str) -> None:
    with pytest.raises(TextError, match="nothing to speak: the text has no letters or digits"):
        segment_text(text)


@pytest.mark.parametrize("texts", [[t] for t in NOTHING_TO_SPEAK[:-3]] + [["😀", "。。。", "\u200b"]])
def test_presegmented_with_nothing_to_speak_is_rejected(texts: list[str]) -> None:
    with pytest.raises(TextError, match="nothing to speak"):
        presegmented(texts)


@pytest.mark.parametrize("text", ["7", "Ⅻ", "ok", "😀 a", "。。。一"])
def test_one_letter_or_digit_is_enough(text: str) -> None:
    assert segment_text(text)
    assert presegmented([text])


def test_segments_without_letters_are_kept_beside_speakable_ones() -> None:
    segs = segment_text('你好\n。。。\n😀<break time="1s"/>')
    assert [(s.text, s.pause_ms) for s in segs] == [("你好", 0), ("。。。😀", 1000)]
    assert [s.text for s in presegmented(["你好", "。。。", "😀"])] == ["你好", "。。。", "😀"]


def _visible(text: str) -> str:
    return "".join(c for c in text if not c.isspace())


HOSTILE = {
    "one 64 KB word": "a" * MAX_REQUEST_TEXT_BYTES,
    "Han without punctuation": "一" * (MAX_REQUEST_TEXT_BYTES // 3),
    "words and spaces only": ("hello " * MAX_REQUEST_TEXT_BYTES)[:MAX_REQUEST_TEXT_BYTES],
    "commas without a space after": "," * (MAX_REQUEST_TEXT_BYTES - 1) + "x",
    "unclosed <break": ("<break" * MAX_REQUEST_TEXT_BYTES)[:MAX_REQUEST_TEXT_BYTES],
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_64_kb_without_punctuation_is_cut_in_bounded_segments(text: str) -> None:
    # These took 0.7 s to 46 s each before segmentation was made linear; now ~0.03 s.
    segs = segment_text(text)
    assert _visible("".join(s.text for s in segs)) == _visible(text)
    assert weight(segs[0].text) <= FIRST_MAX_CHARS
    assert all(weight(s.text) <= MAX_CHARS and len(s.text.encode()) <= MAX_SEGMENT_TEXT_BYTES for s in segs)


def _isspace_calls(text: str) -> int:
    """Segment ``text`` and count the characters examined: calls of ``str.isspace``, seen by a profiler."""
    calls = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "c_call" and getattr(arg, "__name__", "") == "isspace":
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        segment_text(text)
    finally:
        sys.setprofile(previous)
    return calls


@pytest.mark.parametrize("text", ["a" * 8000, "一" * 8000, "hello " * 1500, "你好 " * 3000])
def test_segmentation_examines_each_character_a_bounded_number_of_times(text: str) -> None:
    """Linear, by counting work: the old hard split re-weighed the whole remainder for every piece.

    Old code: 67 to 172 ``isspace`` calls per character on these 8 to 9 k inputs, growing with the length.
    """
    assert _isspace_calls(text) <= 3 * len(text)


def test_a_weight_of_exactly_the_cap_fits() -> None:
    # 250 x 0.4 summed in floats is 100.00000000000034; weights are exact, so 250 letters fit.
    clause = "a" * 249 + "."
    segs = segment_text(f"你好，{clause} {clause}")
    assert [s.text for s in segs] == ["你好，", clause, clause]


def test_whitespace_cannot_push_a_segment_over_the_byte_limit() -> None:
    # Weight ignores whitespace: 3,000 ideographic spaces (9,000 bytes) weigh nothing.
    text = "甲" + "\u3000" * 3000 + "乙" + " " * 5000 + "丙，" + "丁 " * 2000
    segs = segment_text(text)
    assert all(len(s.text.encode()) <= MAX_SEGMENT_TEXT_BYTES for s in segs)
    assert _visible("".join(s.text for s in segs)) == _visible(text)


def test_a_long_malformed_break_is_reported_briefly() -> None:
    with pytest.raises(TextError, match="malformed <break") as exc:
        segment_text('你好<break time="1s"' + " " * 60000 + "x>")
    assert len(str(exc.value)) < 200


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
