"""Streaming encoders: every format's audio leaves as soon as it is encoded, and decodes whole."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from gateway.encode import FORMATS, make_encoder

RATE = 24_000
FEED = 2_400  # 100 ms per feed, as the workers' frames
CONTAINERS = {"opus": "ogg", "mp3": "mp3", "flac": "flac", "aac": "aac", "wav": "wav", "m4a": "mp4"}
AAC_FRAME = 1024
LAG_S = {"m4a": 5 * AAC_FRAME / RATE}
"""How far the decodable audio may trail what was fed, where more than 100 ms: M4A trims the AAC
priming, so all it decodes is audio, and its muxer holds a fragment of two frames and the frame
that closes it (tests/gateway/test_formats.py has the bound)."""


def tone(n: int, start: int) -> bytes:
    t = np.arange(start, start + n)
    return (np.sin(t * 2 * np.pi * 220 / RATE) * 8000).astype("<i2").tobytes()


def playable_s(data: bytes, fmt: str) -> float:
    """Seconds a decoder gets out of ``data`` (a stream cut where the encoder left it)."""
    if fmt == "pcm":
        return len(data) / 2 / RATE
    try:
        container = av.open(io.BytesIO(data), format=CONTAINERS[fmt])
        frames = list(container.decode(audio=0))
    except av.FFmpegError:
        return 0.0
    return sum(f.samples for f in frames) / frames[0].sample_rate if frames else 0.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_leaves_as_soon_as_it_is_encoded(fmt: str) -> None:
    """After each 100 ms fed, the bytes out so far decode to at least what was fed minus one
    frame (codec delay and a partly filled packet), or more where the container holds more
    (:data:`LAG_S`). Ogg used to close a page only every second, so a live Opus stream held a
    second of synthesised audio back."""
    encoder = make_encoder(fmt, RATE)
    out, fed = b"", 0
    for i in range(15):
        out += encoder.feed(tone(FEED, fed))
        fed += FEED
        if i >= 1:
            assert playable_s(out, fmt) >= fed / RATE - LAG_S.get(fmt, 0.1), (fmt, i, playable_s(out, fmt))
    out += encoder.close()
    if fmt in ("mp3", "aac"):  # a live MP3 and ADTS cannot signal encoder delay and padding: longer, never shorter
        assert fed / RATE <= playable_s(out, fmt) < fed / RATE + 0.1, (fmt, playable_s(out, fmt))
    elif fmt == "m4a":  # the priming trimmed by the edit list; FFmpeg keeps the last frame's padding
        assert fed / RATE <= playable_s(out, fmt) < (fed + AAC_FRAME) / RATE, (fmt, playable_s(out, fmt))
    else:
        assert abs(playable_s(out, fmt) - fed / RATE) < 0.01, (fmt, playable_s(out, fmt))
