"""Kokoro v1.0 ONNX backend: phonemes -> token ids -> waveform, at most 510 tokens per call.

Inputs follow the model: ``tokens`` int64 [1, n+2] padded ``[0, *ids, 0]``,
``style`` float32 [1, 256] = ``voice[len(ids) - 1]``, ``speed`` float32 [1].
Longer phoneme strings are split at punctuation, then at word gaps, so no call
exceeds the limit and each piece streams out as soon as it is synthesised.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from shared.errors import UnknownVoice
from workers.model_store import LoadedModel
from workers.providers import choose_providers, session_options

__all__ = ["KokoroBackend", "split_phonemes"]

log = logging.getLogger(__name__)
MAX_TOKENS = 510
STYLE_DIM = 256


def split_phonemes(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """Pieces of at most ``limit`` symbols, cut after punctuation, else at spaces, else anywhere."""
    if len(phonemes) <= limit:
        return [phonemes] if phonemes.strip() else []
    out: list[str] = []
    cur = ""
    for piece in re.split(r"(?<=[,.!?;:—…])\s+|\s+", phonemes):
        while len(piece) > limit:
            if cur:
                out.append(cur)
                cur = ""
            out.append(piece[:limit])
            piece = piece[limit:]
        candidate = f"{cur} {piece}" if cur else piece
        if len(candidate) > limit:
            out.append(cur)
            cur = piece
        else:
            cur = candidate
    if cur.strip():
        out.append(cur)
    return [p for p in out if p.strip()]


class KokoroBackend:
    """One onnxruntime session of a Kokoro model plus its vocabulary and voices."""

    def __init__(
        self,
        model_bytes: bytes,
        vocab: dict[str, int],
        voices: dict[str, npt.NDArray[np.float32]],
        *,
        sample_rate: int = 24000,
        model_id: str = "kokoro",
        threads: int | None = None,
        device: str = "auto",
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        providers = choose_providers(device)
        self.session = ort.InferenceSession(model_bytes, sess_options=session_options(threads), providers=providers)
        used = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in used else "cpu"
        self.sample_rate = sample_rate
        self.model_id = model_id
        self.max_tokens = max_tokens
        self.vocab = vocab
        self._voices = voices
        log.info("kokoro session on %s (providers %s, threads %s)", self.device, used, threads or "default")

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, *, threads: int | None = None, device: str = "auto") -> KokoroBackend:
        files = loaded.files
        vocab = json.loads(files["vocab.json"].decode("utf-8"))["vocab"]
        with np.load(io.BytesIO(files["voices.npz"])) as npz:
            voices = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
        for name, data in files.items():  # voice-<name>.bin: one voice as raw float32 [510, 1, 256] (kokoro.js)
            if name.startswith("voice-") and name.endswith(".bin"):
                voices[name[len("voice-") : -len(".bin")]] = np.frombuffer(data, dtype="<f4").reshape(-1, 1, 256)
        return cls(
            files["model.onnx"],
            vocab,
            voices,
            sample_rate=loaded.spec.sample_rate,
            model_id=f"{loaded.spec.id}@{loaded.spec.version}",
            threads=threads,
            device=device,
            max_tokens=loaded.spec.max_tokens,
        )

    def voices(self) -> list[str]:
        return sorted(self._voices)

    def tokenize(self, phonemes: str) -> list[int]:
        return [self.vocab[c] for c in phonemes if c in self.vocab]

    def infer(self, ids: list[int], voice: str, speed: float) -> npt.NDArray[np.float32]:
        pack = self._voices[voice]
        style = pack[min(len(ids), len(pack)) - 1].reshape(1, STYLE_DIM)
        out = self.session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": style.astype(np.float32),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(out, dtype=np.float32).ravel()

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        if voice not in self._voices:
            raise UnknownVoice(voice, sorted(self._voices))
        for piece in split_phonemes(phonemes, self.max_tokens):
            ids = self.tokenize(piece)[: self.max_tokens]
            if ids:
                yield self.infer(ids, voice, speed)

    def warm_up(self) -> None:
        """One short call so the first real request does not pay for lazy initialisation."""
        voice = next(iter(self._voices))
        ids = self.tokenize("ni↗xau↓") or [next(iter(self.vocab.values()))]
        self.infer(ids, voice, 1.0)
