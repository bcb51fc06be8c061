"""Voice routing: a segment's voice picks the model (backend) and its language picks the frontend.

A request may use several voices (one per segment's language, docs/PROTOCOL.md §3.1)
but has one sample rate, its first voice's: a segment whose payload carries ``sr``
(the request's rate) unlike its voice's model is resampled here, as the model yields
it (:class:`Resampler`, FFmpeg's windowed-sinc resampler through PyAV), so the
frames of one request share one rate and listeners need no change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from chorus_client.protocol import SegmentJob
from models.catalog import Catalog, load_catalog
from shared.errors import ConfigError, InvalidRequest, ModelError, ModelNotInstalled, UnknownVoice
from workers.backend import SynthesisBackend
from workers.frontend import TextFrontend
from workers.kokoro import KokoroBackend
from workers.model_store import LoadedModel, ModelStore

if TYPE_CHECKING:
    import av

__all__ = ["Engine", "Resampler", "load_engine"]

log = logging.getLogger(__name__)


class WarmBackend(SynthesisBackend, Protocol):
    def warm_up(self) -> None: ...


Loader = Callable[[str, str, "str | None"], tuple[SynthesisBackend, list[str]]]
"""(model id, version, floor) -> a verified, warmed backend and the voices it serves."""


@dataclass
class Engine:
    """Backends by voice name, frontends by language, and the model version behind each."""

    backends: dict[str, SynthesisBackend]
    frontends: dict[str, TextFrontend]
    verify_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    """Model id -> the version being served."""
    loader: Loader | None = None
    """How to load another version of a model (set by :func:`load_engine`)."""
    models: dict[str, str] = field(default_factory=dict)
    """Voice -> the model id serving it (set by :meth:`swap`)."""

    def swap(self, model_id: str, version: str, backend: SynthesisBackend, voices: list[str]) -> None:
        """Serve ``voices`` from ``backend`` from the next segment on (the worker calls this between segments)."""
        for voice in voices:
            self.backends[voice] = backend
            self.models[voice] = model_id
        self.versions[model_id] = version

    def voice_info(self, catalog: Catalog) -> dict[str, str]:
        """Voice -> the JSON a client reads from the ``voices`` hash (``lang``, ``sample_rate``, ``model``,
        ``version``, and ``"default": true`` on the catalog's default voice of its language: what a
        client picks for a segment in that language when the request names no voice), for every
        voice served that ``catalog`` knows."""
        out = {}
        for voice, backend in sorted(self.backends.items()):
            spec = catalog.voices.get(voice)
            if spec is None:
                continue
            model = self.models.get(voice, spec.model)
            info: dict[str, object] = {"lang": spec.lang, "sample_rate": backend.sample_rate, "model": model}
            info["version"] = self.versions.get(model, "")
            if catalog.default_voices.get(spec.lang) == voice:
                info["default"] = True
            out[voice] = json.dumps(info, sort_keys=True)
        return out

    def voices(self) -> list[str]:
        return sorted(self.backends)

    def backend_for(self, voice: str) -> SynthesisBackend:
        try:
            return self.backends[voice]
        except KeyError:
            raise UnknownVoice(voice, self.voices()) from None

    def render(self, job: SegmentJob) -> Iterator[npt.NDArray[np.float32]]:
        """Synthesise one segment; yields waveform pieces as the model produces them, at
        :meth:`output_rate` (resampled from the model's rate when the payload asks for another)."""
        backend = self.backend_for(job.voice)
        if not job.text.strip():
            return
        frontend = self.frontends.get(job.lang)
        if frontend is None:
            raise InvalidRequest("lang", f"no text frontend for language {job.lang!r} on this worker")
        phonemes = frontend.phonemize(job.text)
        log.debug("segment %s/%d phonemes %r", job.request_id, job.seq, phonemes)
        pieces = backend.synthesize(phonemes, job.voice, job.speed)
        rate = self.output_rate(job)
        if rate == backend.sample_rate:
            yield from pieces
            return
        log.debug("segment %s/%d resampled %d -> %d Hz", job.request_id, job.seq, backend.sample_rate, rate)
        resampler = Resampler(backend.sample_rate, rate)
        for piece in pieces:
            out = resampler.feed(piece)
            if out.size:
                yield out
        tail = resampler.flush()
        if tail.size:
            yield tail

    def sample_rate(self, voice: str) -> int:
        """The rate of the voice's model."""
        return self.backend_for(voice).sample_rate

    def output_rate(self, job: SegmentJob) -> int:
        """The rate of the segment's audio frames: the request's (payload ``sr``) when given, else the
        voice's model's."""
        return job.sample_rate or self.sample_rate(job.voice)


class Resampler:
    """Streaming mono float32 resampling from ``src`` to ``dst`` Hz with FFmpeg's swresample (PyAV's
    ``AudioResampler``: a windowed-sinc filter, not interpolation), fed piece by piece as a model
    yields audio; :meth:`flush` returns what the filter still holds. The output has
    round(n × dst / src) samples for n in, within a sample."""

    def __init__(self, src: int, dst: int) -> None:
        import av  # the worker needs it only for requests that mix voices of different rates

        self.src, self.dst = src, dst
        self._frame_type = av.AudioFrame
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=dst)

    def _frames(self, frame: av.AudioFrame | None) -> npt.NDArray[np.float32]:
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)

    def feed(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(1, -1))
        if not x.size:
            return np.zeros(0, dtype=np.float32)
        frame = self._frame_type.from_ndarray(x, format="flt", layout="mono")
        frame.sample_rate = self.src
        return self._frames(frame)

    def flush(self) -> npt.NDArray[np.float32]:
        return self._frames(None)


def load_engine(
    *,
    store: ModelStore | None = None,
    catalog: Catalog | None = None,
    threads: int | None = None,
    device: str = "auto",
    model_ids: list[str] | None = None,
    warm_up: bool = True,
    versions: dict[str, str] | None = None,
) -> Engine:
    """Load every installed (or every named) model from the store, verified, and warm it up.

    ``versions`` picks a version per model id (the deployment's active ones);
    otherwise the catalog's highest.
    """
    store = store or ModelStore()
    catalog = catalog or load_catalog()
    wanted = model_ids or [m for m, spec in catalog.models.items() if store.is_installed(spec)]
    if not wanted:
        raise ModelNotInstalled("any", f"no model in {store.root}; run `chorus models install kokoro`")

    def load(model_id: str, version: str | None, floor: str | None) -> tuple[SynthesisBackend, list[str]]:
        spec = catalog.spec(model_id, version)
        loaded = store.load(spec, floor=floor)
        engine.verify_s[model_id] = loaded.verify_s
        backend = make_backend(loaded, threads=threads, device=device)
        if warm_up:
            backend.warm_up()
        return backend, [v.name for v in spec.voices]

    engine = Engine(backends={}, frontends={}, loader=load)
    for model_id in wanted:
        version = (versions or {}).get(model_id) or catalog.models[model_id].version
        backend, voices = load(model_id, version, None)
        engine.swap(model_id, version, backend, voices)
        for lang in catalog.spec(model_id, version).languages:
            if lang not in engine.frontends:
                engine.frontends[lang] = make_frontend(lang)
                if warm_up:
                    engine.frontends[lang].phonemize(WARM_UP_TEXT.get(lang, "a"))
    return engine


WARM_UP_TEXT = {"zh": "你好", "en": "Hello."}


def make_frontend(lang: str) -> TextFrontend:
    """The text frontend of a language (its packages are imported only when it is served)."""
    if lang == "zh":
        from workers.frontend_zh import MandarinFrontend

        return MandarinFrontend()
    if lang == "en":
        from workers.frontend_en import EnglishFrontend

        return EnglishFrontend()
    raise ConfigError(f"no text frontend for language {lang!r} (there are: zh, en)")


def make_backend(loaded: LoadedModel, *, threads: int | None, device: str) -> WarmBackend:
    """The ONNX backend of a verified model, by its catalog family."""
    family = loaded.spec.family
    if family == "kokoro":
        return KokoroBackend.from_loaded(loaded, threads=threads, device=device)
    if family == "piper":
        from workers.piper import PiperBackend

        return PiperBackend.from_loaded(loaded, threads=threads, device=device)
    raise ModelError(f"model {loaded.spec.id}: unknown family {family!r} (known: kokoro, piper)")
