"""Property tests of the segmenter: no input crashes it, rejections are TextError, nothing is lost or added.

Text with no letter or digit (Unicode category L* or N*) outside its ``<break>`` tags is always refused.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from chorus_client.protocol import MAX_PAUSE_MS, MAX_SEGMENT_TEXT_BYTES, MAX_SEGMENTS
from chorus_client.segment import segment_text
from shared.errors import TextError

BREAK_RE = re.compile(r"<break\b([^>]*)/?>", re.IGNORECASE)
pieces = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="你好世界今天天气很好我们一起去公园散步吧。，！？；：、…,.!? \n", max_size=120),
    st.sampled_from(['<break time="250ms"/>', "<break time='1.5s'/>", "<break time=\"20s\"/>", "<break>",
                     "<BREAK TIME=\"10ms\">", "<break oops/>", "\u200b", "\ud800", "e\u0301", "A" * 3000,
                     "😀", "\x01\x02", "。。。", "\u3000" * 700, "一" * 700, "Ⅻ", "7"]),
)  # fmt: skip


def _visible(text: str) -> str:
    return "".join(c for c in text if not c.isspace())


def _speakable(text: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in text)


@settings(max_examples=500, deadline=None)
@given(st.lists(pieces, max_size=12).map("".join))
def test_segmenter_never_crashes_and_loses_nothing(text: str) -> None:
    try:
        segments = segment_text(text)
    except TextError as exc:
        assert str(exc)
        return
    assert _speakable(BREAK_RE.sub(" ", unicodedata.normalize("NFC", text))), "no letter or digit: refused"
    assert 1 <= len(segments) <= MAX_SEGMENTS
    for s in segments:
        assert len(s.text.encode("utf-8")) <= MAX_SEGMENT_TEXT_BYTES
        assert 0 <= s.pause_ms <= MAX_PAUSE_MS
    expected = _visible(BREAK_RE.sub(" ", unicodedata.normalize("NFC", text)))
    assert _visible("".join(s.text for s in segments)) == expected, "every visible character, once, in order"


@settings(max_examples=500, deadline=None)
@given(st.lists(pieces, max_size=12).map("".join))
def test_the_producers_segment_lower_bound_never_exceeds_the_count(text: str) -> None:
    """The gateway refuses a long text that cannot fit a tenant's queue by this bound, before segmenting
    it: a bound above the real count would refuse a text that fits."""
    from broker.producer import min_segments

    try:
        segments = segment_text(text)
    except TextError:
        return
    assert min_segments(text) <= len(segments)
