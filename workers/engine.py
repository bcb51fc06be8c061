"""Voice routing: a segment's voice picks the model (backend) and its language picks the frontend."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.catalog import Catalog, load_catalog
from shared.errors import ChorusError, UnknownVoice
from shared.protocol import SegmentJob
from workers.backend import SynthesisBackend
from workers.frontend import TextFrontend
from workers.kokoro import KokoroBackend
from workers.model_store import ModelStore

__all__ = ["Engine", "load_engine"]

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """Backends by voice name, frontends by language."""

    backends: dict[str, SynthesisBackend]
    frontends: dict[str, TextFrontend]
    verify_s: dict[str, float] = field(default_factory=dict)

    def voices(self) -> list[str]:
        return sorted(self.backends)

    def backend_for(self, voice: str) -> SynthesisBackend:
        try:
            return self.backends[voice]
        except KeyError:
            raise UnknownVoice(voice, self.voices()) from None

    def render(self, job: SegmentJob) -> Iterator[npt.NDArray[np.float32]]:
        """Synthesise one segment; yields waveform pieces as the model produces them."""
        backend = self.backend_for(job.voice)
        if not job.text.strip():
            return
        frontend = self.frontends.get(job.lang)
        if frontend is None:
            raise ChorusError(f"no text frontend for language {job.lang!r}")
        phonemes = frontend.phonemize(job.text)
        log.debug("segment %s/%d phonemes %r", job.request_id, job.seq, phonemes)
        yield from backend.synthesize(phonemes, job.voice, job.speed)

    def sample_rate(self, voice: str) -> int:
        return self.backend_for(voice).sample_rate


def load_engine(
    *,
    store: ModelStore | None = None,
    catalog: Catalog | None = None,
    threads: int | None = None,
    device: str = "auto",
    model_ids: list[str] | None = None,
    warm_up: bool = True,
) -> Engine:
    """Load every installed (or every named) model from the store, verified, and warm it up."""
    from workers.frontend_zh import MandarinFrontend

    store = store or ModelStore()
    catalog = catalog or load_catalog()
    wanted = model_ids or [m for m, spec in catalog.models.items() if store.is_installed(spec)]
    if not wanted:
        raise ChorusError(f"no model installed in {store.root}; run `chorus models install kokoro`")
    engine = Engine(backends={}, frontends={"zh": MandarinFrontend()})
    for model_id in wanted:
        spec = catalog.models[model_id]
        loaded = store.load(spec)
        engine.verify_s[model_id] = loaded.verify_s
        backend = KokoroBackend.from_loaded(loaded, threads=threads, device=device)
        if warm_up:
            backend.warm_up()
        for voice in spec.voices:
            engine.backends[voice.name] = backend
    if warm_up:
        for frontend in engine.frontends.values():
            frontend.phonemize("你好")
    return engine
