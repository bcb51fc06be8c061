"""The web page's audio in headless Chromium (Debian's package, driven by Playwright), measured, not listened to.

* Chunk seams: the page plays a PCM stream as one continuous signal whatever the network's chunking. Its own
  playback path (``window.chorusPlayback``: the decoder, the scheduler and the read loop the page runs) is
  rendered offline (an ``OfflineAudioContext`` at the stream's rate, as the page opens its ``AudioContext``)
  for a sine sweep cut at random byte offsets, odd ones and one-byte chunks among them, and compared with
  the sweep as one buffer: the two are equal, sample for sample. The page's former path (every chunk
  a buffer at the stream's rate in a context at the device's rate, so each chunk resampled on its own)
  is rendered the same way, to show what the test tells apart.
* ``<audio>``: a finished request, which the gateway replays as one complete file with a Content-Length,
  played in each format the gateway serves, to its end (``ended``), its ``duration`` the audio's length
  within a codec frame (ADTS AAC: longer by its priming and padding, under two frames), or refused where
  Chromium cannot tell what it is (raw PCM)."""

from __future__ import annotations

import base64
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from playwright.sync_api import Page

from gateway.encode import FORMATS
from tests.gateway.browser import gateway_page

pytestmark = pytest.mark.slow
TWO = "你好，世界！今天天气很好。"  # two segments of 0.6 s (six 100 ms frames each: see conftest.py)
AUDIO_S = 1.2

RENDER = """async ({ b64, cuts, rate, deviceRate }) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const chunks = cuts.slice(0, -1).map((a, i) => bytes.subarray(a, cuts[i + 1]));
  const n = bytes.length / 2, { Pcm16Decoder, StreamPlayer, playPcm } = window.chorusPlayback;
  async function page(parts) {  // the page's path: its context runs at the stream's rate
    const ctx = new OfflineAudioContext(1, n + 256, rate);
    const body = new ReadableStream({ start(c) { parts.forEach((p) => c.enqueue(p)); c.close(); } });
    await playPcm(body.getReader(), new StreamPlayer(ctx, rate, 0));
    return Array.from((await ctx.startRendering()).getChannelData(0));
  }
  async function former(parts) {  // the page before issue 22: a buffer per chunk in a context at the device's rate
    const ctx = new OfflineAudioContext(1, Math.ceil(n * deviceRate / rate) + 256, deviceRate);
    const decoder = new Pcm16Decoder();
    let playAt = 0;
    for (const part of parts) {
      const pcm = decoder.push(part);
      if (!pcm.length) continue;
      const buf = ctx.createBuffer(1, pcm.length, rate);
      buf.copyToChannel(pcm, 0);
      const src = ctx.createBufferSource();
      src.buffer = buf; src.connect(ctx.destination); src.start(playAt); playAt += buf.duration;
    }
    return Array.from((await ctx.startRendering()).getChannelData(0));
  }
  return { page: await page(chunks), pageWhole: await page([bytes]),
           former: await former(chunks), formerWhole: await former([bytes]) };
}"""


@pytest.fixture(scope="module")
def page(stack: dict[str, object]) -> Iterator[Page]:
    """The gateway's page in headless Chromium, autoplay allowed."""
    with gateway_page(str(stack["base"])) as tab:
        yield tab


def sweep(rate: int, seconds: float) -> npt.NDArray[np.int16]:
    """A logarithmic sine sweep from 50 Hz to 5 kHz at half of full scale, as PCM16."""
    t = np.arange(int(rate * seconds)) / rate
    f0, f1 = 50.0, 5000.0
    k = np.log(f1 / f0) / seconds
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    pcm: npt.NDArray[np.int16] = np.round(0.5 * 32767 * np.sin(phase)).astype(np.int16)
    return pcm


def random_cuts(size: int, rng: random.Random) -> list[int]:
    """Byte offsets 0 < … < size that split a body as a network might: anywhere (odd offsets too), chunks
    of 1 byte up to 4 KB."""
    cuts, at = [0], 0
    while True:
        at += rng.choice((1, 1, 2, 3)) if rng.random() < 0.1 else rng.randint(1, 4096)
        if at >= size:
            return [*cuts, size]
        cuts.append(at)


def dbfs(x: float) -> float:
    return 20 * np.log10(x) if x > 0 else -np.inf


@pytest.mark.parametrize(("rate", "device_rate"), [(22_050, 44_100), (24_000, 48_000)])
def test_the_page_plays_chunks_as_one_continuous_stream(page: Page, rate: int, device_rate: int) -> None:
    pcm = sweep(rate, 2.0)
    body = pcm.astype("<i2").tobytes()
    cuts = random_cuts(len(body), random.Random(rate))
    assert any(c % 2 for c in cuts) and any(b - a == 1 for a, b in itertools.pairwise(cuts))
    out: dict[str, Any] = page.evaluate(
        RENDER, {"b64": base64.b64encode(body).decode(), "cuts": cuts, "rate": rate, "deviceRate": device_rate}
    )
    got, whole = np.array(out["page"], dtype=np.float32), np.array(out["pageWhole"], dtype=np.float32)
    n = len(pcm)
    np.testing.assert_array_equal(whole[:n], pcm / np.float32(32768), "the page does not resample: samples as sent")
    np.testing.assert_array_equal(got, whole, f"{len(cuts) - 1} chunks play as the one buffer, seams and all")
    assert not whole[n:].any(), "and nothing after the end"
    # The former path differs from its own one-buffer rendering at the seams (each chunk resampled alone):
    # that is what the assertion above tells apart.
    error = np.abs(np.array(out["former"]) - np.array(out["formerWhole"]))
    seams = np.zeros(len(error), dtype=bool)
    for cut in cuts:
        at = round(cut // 2 * device_rate / rate)
        seams[max(at - 4, 0) : at + 5] = True
    at_seams, elsewhere = dbfs(error[seams].max()), dbfs(error[~seams].max())
    print(f"{rate} Hz in {device_rate} Hz, former path: {at_seams:.1f} dBFS at seams, {elsewhere:.1f} elsewhere")
    assert at_seams > -40 and elsewhere < -100


def finished_request(stack: dict[str, object]) -> str:
    """A request of two segments, finished (its whole stream read once)."""
    base, h = stack["base"], {"Authorization": f"Bearer {stack['a']}"}
    rid: str = httpx.post(f"{base}/v1/requests", json={"input": TWO}, headers=h, timeout=30).json()["id"]
    httpx.get(f"{base}/v1/requests/{rid}/audio?format=pcm", headers=h, timeout=30)  # to its end
    for _ in range(100):
        head = httpx.head(f"{base}/v1/requests/{rid}/audio?format=wav", headers=h, timeout=30)
        if int(head.headers.get("content-length", 0)) > 44:  # replayed as a complete file
            return rid
        time.sleep(0.05)
    raise AssertionError(f"request {rid} did not finish")


PLAY = """async ({ rid, key, formats }) => {
  const play = (fmt) => new Promise((resolve) => {
    const audio = new Audio(`/v1/requests/${rid}/audio?format=${fmt}&api_key=${encodeURIComponent(key)}`);
    const result = (ended) => resolve({ fmt, ended, duration: audio.duration, currentTime: audio.currentTime,
                                        error: audio.error && audio.error.code });
    audio.onended = () => result(true);
    audio.onerror = () => result(false);
    audio.play().catch(() => {});
  });
  return Promise.all(formats.map(play));
}"""

FRAME_S = {
    "wav": 1 / 24_000,
    "flac": 1 / 24_000,
    "mp3": 576 / 24_000,
    "opus": 960 / 48_000,
    "aac": 1024 / 24_000,
    "m4a": 1024 / 24_000,
}
"""One codec frame of each format (MPEG-2 layer III at 24 kHz: 576 samples; Opus: 20 ms; AAC: 1024 samples);
one sample for WAV and FLAC, whose headers give the exact length."""


def test_audio_elements_play_each_format_to_its_end(page: Page, stack: dict[str, object]) -> None:
    """Measured with Debian's Chromium 156: WAV, FLAC, MP3 (its LAME/Xing header) and M4A (its edit list)
    last exactly 1.2 s; Ogg Opus 1.1935 s, 312 samples (its pre-skip) short of the length its last granule
    gives, Chromium's reading; ADTS AAC 1.28 s, 30 whole frames: ADTS carries neither the encoder's delay
    (1024 samples) nor the length, so the priming and the last frame's padding count; raw PCM does not play
    (no header says what it is)."""
    rid = finished_request(stack)
    results = page.evaluate(PLAY, {"rid": rid, "key": str(stack["a"]), "formats": list(FORMATS)})
    by_fmt = {r["fmt"]: r for r in results}
    assert set(by_fmt) == set(FRAME_S) | {"pcm"}, "a format the gateway serves is neither tested nor excused"
    assert not by_fmt["pcm"]["ended"] and by_fmt["pcm"]["error"] == 4, by_fmt["pcm"]  # MEDIA_ERR_SRC_NOT_SUPPORTED
    for fmt, frame in FRAME_S.items():
        r = by_fmt[fmt]
        assert r["ended"] and r["error"] is None, r
        assert abs(r["currentTime"] - r["duration"]) <= frame, ("played to its end", r)
        if fmt == "aac":
            assert 0 < r["duration"] - AUDIO_S <= 2 * frame, ("priming and padding: under two frames", r)
        else:
            assert abs(r["duration"] - AUDIO_S) <= frame, r
