"""Piper VITS ONNX backend (``en_US-joe-medium``): espeak-ng phonemes -> ids -> waveform at 22,050 Hz.

The voice's ``config.json`` (Piper's ``.onnx.json``) carries the phoneme-id map
and the inference scales. Ids follow Piper: ``^``, then each phoneme followed by
the pad ``_``, then ``$``. Inputs: ``input`` int64 [1, n], ``input_lengths``
int64 [1], ``scales`` float32 [3] = noise, length (divided by the speed),
noise_w. The frontend separates sentences with a newline; each sentence is one
model call, so audio streams sentence by sentence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from shared.errors import UnknownVoice
from workers.model_store import LoadedModel
from workers.providers import choose_providers, session_options

__all__ = ["PiperBackend"]

log = logging.getLogger(__name__)
BOS, EOS, PAD = "^", "$", "_"
MAX_PHONEMES = 2000
"""Longest sentence per call (Piper has no hard limit; this bounds memory)."""


class PiperBackend:
    def __init__(
        self,
        model_bytes: bytes,
        config: dict[str, Any],
        voices: list[str],
        *,
        model_id: str = "piper",
        threads: int | None = None,
        device: str = "auto",
    ) -> None:
        providers = choose_providers(device)
        self.session = ort.InferenceSession(model_bytes, sess_options=session_options(threads), providers=providers)
        self.device = "cuda" if "CUDAExecutionProvider" in self.session.get_providers() else "cpu"
        self.model_id = model_id
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.id_map: dict[str, list[int]] = {k: list(v) for k, v in config["phoneme_id_map"].items()}
        inf = config.get("inference", {})
        self.noise_scale = float(inf.get("noise_scale", 0.667))
        self.length_scale = float(inf.get("length_scale", 1.0))
        self.noise_w = float(inf.get("noise_w", 0.8))
        self._voices = list(voices)
        self.skipped: set[str] = set()
        """Phonemes the voice has no id for (dropped, logged once)."""

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, *, threads: int | None = None, device: str = "auto") -> PiperBackend:
        config = json.loads(loaded.files["config.json"].decode("utf-8"))
        voices = [v.name for v in loaded.spec.voices]
        return cls(
            loaded.files["model.onnx"],
            config,
            voices,
            model_id=f"{loaded.spec.id}@{loaded.spec.version}",
            threads=threads,
            device=device,
        )

    def voices(self) -> list[str]:
        return list(self._voices)

    def ids(self, phonemes: str) -> list[int]:
        out = list(self.id_map[BOS])
        for ph in phonemes:
            mapped = self.id_map.get(ph)
            if mapped is None:
                if ph not in self.skipped:
                    self.skipped.add(ph)
                    log.warning("piper voice has no id for phoneme %r; dropped", ph)
                continue
            out += mapped
            out += self.id_map[PAD]
        return out + self.id_map[EOS]

    def infer(self, ids: list[int], speed: float) -> npt.NDArray[np.float32]:
        scales = np.array([self.noise_scale, self.length_scale / speed, self.noise_w], dtype=np.float32)
        out = self.session.run(
            None,
            {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            },
        )[0]
        return np.asarray(out, dtype=np.float32).ravel()

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        if voice not in self._voices:
            raise UnknownVoice(voice, sorted(self._voices))
        for sentence in phonemes.split("\n"):
            sentence = sentence.strip()[:MAX_PHONEMES]
            if sentence:
                yield self.infer(self.ids(sentence), speed)

    def warm_up(self) -> None:
        self.infer(self.ids("həlˈoʊ"), 1.0)
