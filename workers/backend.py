"""The synthesis-backend seam, and the null backend used by queue benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["NullBackend", "SynthesisBackend"]


class SynthesisBackend(Protocol):
    """Phonemes in, float32 waveform chunks out (one per model call)."""

    sample_rate: int
    model_id: str
    device: str

    def voices(self) -> list[str]: ...

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]: ...


class NullBackend:
    """Returns a fixed stretch of silence at once: measures the queue, not a model."""

    model_id = "null"
    device = "none"

    def __init__(self, sample_rate: int = 24000, samples: int = 2400) -> None:
        self.sample_rate = sample_rate
        self._audio = np.zeros(samples, dtype=np.float32)

    def voices(self) -> list[str]:
        return []

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        yield self._audio
