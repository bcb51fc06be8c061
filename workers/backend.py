"""The synthesis-backend seam (test and benchmark doubles live in :mod:`chorus.testing`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["SynthesisBackend"]


class SynthesisBackend(Protocol):
    """Phonemes in, float32 waveform chunks out (one per model call)."""

    sample_rate: int
    model_id: str
    device: str

    def voices(self) -> list[str]: ...

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]: ...
