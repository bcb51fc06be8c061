"""One request, several voices: the engine resamples a segment whose voice has another rate than the
request's (payload ``sr``), the worker publishes it at the request's rate, and workers mark each
language's default voice in the voices hash. Tone backends at 24,000 and 22,050 Hz stand in for Kokoro
and Piper (tests/e2e/test_mixed_voices_e2e.py runs the real ones)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import redis

from broker.producer import Producer
from chorus.testing import IdentityFrontend
from chorus_client.keys import Keys
from chorus_client.protocol import AudioFrame, EndFrame, HeaderFrame, SegmentJob, decode_frame
from models.catalog import load_catalog
from workers.engine import Engine, Resampler
from workers.worker import Worker, WorkerConfig

TONE_HZ = 440.0
TONE_S = 0.5

ZH = load_catalog().default_voices["zh"]
"""The catalog's default Mandarin voice (the doubles below serve it)."""


class ToneBackend:
    """``TONE_S`` of a 440 Hz tone at ``sample_rate``, in two pieces."""

    model_id = "tone"
    device = "none"

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def voices(self) -> list[str]:
        return [ZH, "en_joe"]

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        n = int(TONE_S * self.sample_rate)
        tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / self.sample_rate)).astype(np.float32)
        yield tone[: n // 3]
        yield tone[n // 3 :]


def _engine() -> Engine:
    return Engine(
        backends={ZH: ToneBackend(24000), "en_joe": ToneBackend(22050)},
        frontends={lang: IdentityFrontend(lang) for lang in ("zh", "en")},
    )


def _peak_hz(samples: npt.NDArray[np.float32], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_the_resampler_keeps_length_and_pitch_across_pieces() -> None:
    src, dst = 22050, 24000
    x = (0.5 * np.sin(2 * np.pi * TONE_HZ * np.arange(2 * src) / src)).astype(np.float32)
    r = Resampler(src, dst)
    y = np.concatenate([r.feed(x[i : i + 1000]) for i in range(0, len(x), 1000)] + [r.flush()])
    assert abs(len(y) - 2 * dst) <= 1, len(y)
    t = np.arange(len(y)) / dst
    # no delay, no distortion: the same tone sampled at 24 kHz (edges aside)
    assert np.abs(y - 0.5 * np.sin(2 * np.pi * TONE_HZ * t))[500:-500].max() < 1e-3
    assert abs(_peak_hz(y, dst) - TONE_HZ) < 1.0


def test_render_resamples_only_when_the_request_rate_differs() -> None:
    engine = _engine()
    own = SegmentJob("s0.x", 0, "Hello.", "en_joe", "en")
    moved = SegmentJob("s0.x", 1, "Hello.", "en_joe", "en", sample_rate=24000)
    assert engine.output_rate(own) == 22050 and engine.output_rate(moved) == 24000
    assert sum(len(p) for p in engine.render(own)) == int(TONE_S * 22050)
    assert abs(sum(len(p) for p in engine.render(moved)) - TONE_S * 24000) <= 1
    same = SegmentJob("s0.x", 2, "你好。", ZH, "zh", sample_rate=24000)
    assert sum(len(p) for p in engine.render(same)) == int(TONE_S * 24000)


def test_workers_mark_each_languages_default_voice() -> None:
    catalog = load_catalog()
    info = {voice: json.loads(text) for voice, text in _engine().voice_info(catalog).items()}
    assert info[ZH]["default"] is True and info["en_joe"]["default"] is True
    assert (info["en_joe"]["lang"], info["en_joe"]["sample_rate"]) == ("en", 22050)
    engine = _engine()
    engine.backends["jf_alpha"] = engine.backends[ZH]
    assert "default" not in json.loads(engine.voice_info(catalog)["jf_alpha"])


def test_a_22050_hz_voice_is_published_at_the_requests_24000_hz(r: redis.Redis, keys: Keys) -> None:
    worker = Worker(r, _engine(), config=WorkerConfig(name="w-mixed", idle_wait_s=0.1))
    res = Producer(r).enqueue("你好。Hello world. 再见。", tenant="acme")
    assert res.voices == (ZH, "en_joe", ZH) and res.sample_rate == 24000
    while worker.run_once():
        pass
    frames = [decode_frame(f[b"f"]) for _, f in r.xrange(keys.audio(res.request_id))]
    header = next(f for f in frames if isinstance(f, HeaderFrame))
    assert (header.voice, header.sample_rate) == (ZH, 24000)
    assert isinstance(frames[-1], EndFrame) and frames[-1].status == "ok"
    audio = [f for f in frames if isinstance(f, AudioFrame)]
    assert {f.sample_rate for f in audio} == {24000}, "every frame at the request's rate"
    assert all(len(f.pcm) <= 2 * 2400 for f in audio), "frames stay at most 100 ms"
    for seg in (0, 1, 2):
        pcm = np.frombuffer(b"".join(f.pcm for f in audio if f.segment == seg), dtype="<i2")
        x = pcm.astype(np.float32) / 32768
        assert abs(len(x) / 24000 - TONE_S) < 0.01, (seg, len(x))
        assert abs(_peak_hz(x, 24000) - TONE_HZ) < 3.0, seg
