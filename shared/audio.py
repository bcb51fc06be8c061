"""Audio framing: float waveform -> peak-safe PCM16 -> frames of at most 100 ms; WAV output.

Kokoro's peaks exceed 1.0. Rather than clip (harsh distortion) or normalise each
segment (loudness jumps between segments), a soft-knee limiter passes everything
under the knee untouched and bends louder samples smoothly towards full scale.
It is per-sample and stateless, so it streams.
"""

from __future__ import annotations

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
