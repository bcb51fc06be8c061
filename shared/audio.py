"""Audio framing: float waveform -> peak-safe PCM16 -> frames of at most 100 ms; WAV output; loudness.

Kokoro's peaks exceed 1.0. Rather than clip (harsh distortion) or normalise each
segment's peak (loudness jumps between segments), a soft-knee limiter passes
everything under the knee untouched and bends louder samples smoothly towards
full scale. It is per-sample and stateless, so it streams: the last safety of
every PCM16 conversion. :func:`peak_limit` is the clean limiter to use after a
gain (it keeps every sample under the knee), and :func:`loudness_db` the level
that gains are decided on (:mod:`workers.joins`).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_FRAME_MS",
    "WavWriter",
    "frame_pcm",
    "limit",
    "loudness_db",
    "peak_limit",
    "silence_pcm",
    "to_pcm16",
]

DEFAULT_FRAME_MS = 100
KNEE = 0.85
"""Samples below this magnitude pass unchanged."""
CEILING = 0.98
"""Asymptote of the limiter: no sample reaches full scale."""
PCM16_MAX = 32767


def limit(audio: npt.NDArray[np.float32], knee: float = KNEE) -> npt.NDArray[np.float32]:
    """Soft-knee limiter: identity below ``knee``, tanh compression above, never past :data:`CEILING`."""
    x = np.asarray(audio, dtype=np.float32)
    mag = np.abs(x)
    over = mag > knee
    if not over.any():
        return x
    headroom = CEILING - knee
    out: npt.NDArray[np.float32] = x.copy()
    out[over] = np.sign(x[over]) * (knee + headroom * np.tanh((mag[over] - knee) / headroom))
    return out


PEAK_RAMP_MS = 5.0
"""How fast :func:`peak_limit` turns its gain down before a peak and back up after it (a linear ramp)."""


def peak_limit(
    audio: npt.NDArray[np.float32], sample_rate: int, ceiling: float = KNEE, ramp_ms: float = PEAK_RAMP_MS
) -> npt.NDArray[np.float32]:
    """Look-ahead peak limiter over one piece of audio: afterwards no sample exceeds ``ceiling``.

    ``audio`` is float32 [n] at ``sample_rate`` Hz. Where a sample would exceed the
    ceiling, the gain is the lowest one needed within ``ramp_ms / 2`` either side,
    reached by linear ramps of ``ramp_ms``: a smooth gain, not a bent waveform, so
    limiting adds no distortion beyond the gain change itself, and the gain is
    back at 1 within ``ramp_ms`` of the last peak. A piece with no sample over the
    ceiling is returned as it is. The piece is whole when this runs, so looking
    ahead costs no latency.
    """
    x = np.asarray(audio, dtype=np.float32)
    mag = np.abs(x)
    if x.size == 0 or mag.max() <= ceiling:
        return x
    r = max(1, round(sample_rate * ramp_ms / 2000))
    needed = np.minimum(1.0, ceiling / np.maximum(mag.astype(np.float64), 1e-12))
    padded = np.pad(needed, 2 * r, constant_values=1.0)
    held = _window_min(padded, 2 * r + 1)  # [n + 2r]: the lowest gain needed within r of each sample
    sums = np.concatenate(([0.0], np.cumsum(held)))
    gain = (sums[2 * r + 1 :] - sums[: -2 * r - 1]) / (2 * r + 1)  # [n]: mean over r either side
    # every term of the mean is a minimum over a window that holds the sample itself, so gain <= needed;
    # the clip only removes float rounding
    out: npt.NDArray[np.float32] = np.clip(x * gain, -ceiling, ceiling).astype(np.float32)
    return out


def _window_min(a: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    """``out[i] = min(a[i : i + width])`` for every full window, in log2(width) vectorised passes."""
    out, span = a, 1
    while span * 2 <= width:
        out = np.minimum(out[:-span], out[span:])
        span *= 2
    if span < width:
        out = np.minimum(out[: len(out) - (width - span)], out[width - span :])
    return out


LOUDNESS_BLOCK_MS = 400
"""Gating block of :func:`loudness_db` (ITU-R BS.1770), 75 % overlapped."""
ABSOLUTE_GATE_DB = -70.0
RELATIVE_GATE_DB = -10.0


def loudness_db(audio: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Integrated loudness of mono ``audio`` (float32 [n], full scale 1.0) in LUFS, as ITU-R BS.1770-4 measures it.

    K-weighting (the standard's two filters, applied to the spectrum: loudness
    does not depend on phase), mean square over 400 ms blocks every 100 ms,
    blocks under -70 LUFS dropped, then blocks more than 10 LU under the rest.
    Audio shorter than a block is one block. ``-inf`` for silence. A full-scale
    997 Hz sine reads -3.0 LUFS.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return float("-inf")
    # room for the filters' ringing, so it does not wrap onto the start; a power of two, so the FFT is fast
    n = 1 << (x.size + sample_rate // 10 - 1).bit_length()
    spectrum = np.fft.rfft(x, n) * _k_weighting(n, sample_rate)
    y = np.fft.irfft(spectrum, n)
    block = min(x.size, round(sample_rate * LOUDNESS_BLOCK_MS / 1000))
    hop = max(1, block // 4)
    sums = np.concatenate(([0.0], np.cumsum(y[: x.size] ** 2)))
    starts = np.arange(0, x.size - block + 1, hop)
    power = (sums[starts + block] - sums[starts]) / block
    kept = power[power > _power(ABSOLUTE_GATE_DB)]
    if kept.size == 0:
        return float("-inf")
    kept = kept[kept > _power(_lufs(kept.mean()) + RELATIVE_GATE_DB)]
    return _lufs(kept.mean())


def _lufs(power: float) -> float:
    return float(-0.691 + 10 * np.log10(power))


def _power(lufs: float) -> float:
    return float(10 ** ((lufs + 0.691) / 10))


@functools.lru_cache(maxsize=16)  # a few rates x power-of-two lengths
def _k_weighting(n: int, sample_rate: int) -> npt.NDArray[np.float64]:
    """|H| of BS.1770's K-weighting (high shelf, then RLB high-pass) at the bins of an ``n``-point rfft.

    Both biquads are designed for ``sample_rate`` from the standard's analog
    parameters (as libebur128 does; at 48 kHz they are the standard's own
    coefficients), so 22.05 and 24 kHz audio read alike.
    """
    z = np.exp(-1j * np.pi * np.arange(n // 2 + 1) / (n / 2))  # e^{-jw} per bin
    response = np.ones(z.size, dtype=np.complex128)
    for b, a in _k_stages(sample_rate):
        response *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    magnitude = np.abs(response)
    magnitude.setflags(write=False)  # shared by every caller (cached)
    return magnitude


Biquad = tuple[tuple[float, float, float], tuple[float, float, float]]


def _k_stages(rate: int) -> tuple[Biquad, Biquad]:
    """(b, a) of the two stages at ``rate`` Hz, from BS.1770's analog parameters: a +4 dB high shelf at
    1682 Hz (Q 0.7072), then the RLB high-pass at 38.1 Hz (Q 0.5003)."""
    k = float(np.tan(np.pi * 1681.974450955533 / rate))
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (
        ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0),
        (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0),
    )
    k = float(np.tan(np.pi * 38.13547087602444 / rate))
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = ((1.0, -2.0, 1.0), (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0))
    return shelf, high_pass


def to_pcm16(audio: npt.NDArray[np.float32]) -> bytes:
    """Float waveform to little-endian PCM16 with no clipping (see :func:`limit`)."""
    limited = limit(np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0))
    pcm: bytes = (limited * PCM16_MAX).round().astype("<i2").tobytes()
    return pcm


def silence_pcm(ms: int, sample_rate: int) -> bytes:
    return bytes(2 * (sample_rate * ms // 1000))


def frame_pcm(pcm: bytes, sample_rate: int, frame_ms: int = DEFAULT_FRAME_MS) -> Iterator[bytes]:
    """Cut PCM16 into chunks of at most ``frame_ms`` milliseconds (whole samples)."""
    step = max(2, 2 * (sample_rate * frame_ms // 1000))
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step]


class WavWriter:
    """Streams PCM16 mono into a WAV file as it arrives; sizes are fixed on close.

    On a non-seekable sink (a pipe) the header says "unknown length" (0xFFFFFFFF),
    which players accept for streaming WAV.
    """

    def __init__(self, sink: str | Path | BinaryIO, sample_rate: int) -> None:
        self._owns = isinstance(sink, (str, Path))
        self._f: BinaryIO = open(sink, "wb") if isinstance(sink, (str, Path)) else sink
        self.sample_rate = sample_rate
        self.data_bytes = 0
        self._seekable = self._seekable_sink()
        self._f.write(self._header(0xFFFFFFFF - 36 if not self._seekable else 0))

    def _seekable_sink(self) -> bool:
        try:
            return bool(self._f.seekable())
        except (AttributeError, OSError):
            return False

    def _header(self, data_len: int) -> bytes:
        return (
            b"RIFF"
            + struct.pack("<I", min(36 + data_len, 0xFFFFFFFF))
            + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, self.sample_rate, self.sample_rate * 2, 2, 16)
            + b"data"
            + struct.pack("<I", min(data_len, 0xFFFFFFFF))
        )

    def write(self, pcm: bytes) -> None:
        self._f.write(pcm)
        self.data_bytes += len(pcm)

    def flush(self) -> None:
        self._f.flush()

    @property
    def seconds(self) -> float:
        return self.data_bytes / 2 / self.sample_rate

    def close(self) -> None:
        if self._seekable:
            self._f.seek(0)
            self._f.write(self._header(self.data_bytes))
            self._f.seek(0, 2)
        self._f.flush()
        if self._owns:
            self._f.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
