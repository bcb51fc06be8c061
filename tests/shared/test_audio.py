"""Audio framing: no clipping, frames of at most 100 ms, streaming WAV output."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from chorus.testing import read_wav
from shared.audio import KNEE, WavWriter, frame_pcm, limit, silence_pcm, to_pcm16


def test_limiter_leaves_quiet_audio_untouched_and_never_reaches_full_scale() -> None:
    x = np.linspace(-3, 3, 10001, dtype=np.float32)
    y = limit(x)
    quiet = np.abs(x) <= KNEE
    assert np.array_equal(y[quiet], x[quiet])
    assert np.abs(y).max() <= 0.98
    assert np.all(np.diff(y) >= 0), "the limiter must keep the waveform's order (monotonic)"


def test_pcm16_of_loud_audio_has_no_clipped_samples() -> None:
    t = np.arange(24000, dtype=np.float32) / 24000
    loud = 1.6 * np.sin(2 * np.pi * 220 * t)
    pcm = np.frombuffer(to_pcm16(loud.astype(np.float32)), dtype="<i2")
    assert np.abs(pcm.astype(np.int32)).max() < 32767
    assert np.abs(pcm).max() > 30000  # still loud, just not flattened


def test_frames_are_at_most_100ms_and_lose_nothing() -> None:
    pcm = bytes(range(256)) * 100  # 25,600 bytes
    frames = list(frame_pcm(pcm, 24000, 100))
    assert all(len(f) <= 4800 for f in frames)
    assert b"".join(frames) == pcm


def test_silence_length() -> None:
    assert len(silence_pcm(250, 24000)) == 2 * 6000


def test_wav_writer_fixes_sizes_on_close(tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    with WavWriter(out, 24000) as w:
        w.write(b"\x01\x00" * 100)
        w.write(b"\x02\x00" * 50)
    samples, sr = read_wav(out)
    assert sr == 24000 and len(samples) == 150 and samples[0] == 1 and samples[-1] == 2


def test_wav_writer_on_a_pipe_declares_unknown_length() -> None:
    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    sink = Pipe()
    w = WavWriter(sink, 16000)
    w.write(b"\x00\x00" * 10)
    w.close()
    assert sink.getvalue()[40:44] == b"\xdb\xff\xff\xff"[:0] + (0xFFFFFFFF - 36).to_bytes(4, "little")
    with wave.open(io.BytesIO(sink.getvalue())) as wf:
        assert wf.getframerate() == 16000
