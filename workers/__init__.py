"""The synthesis worker: model store, text frontends, ONNX backends, the worker loop."""

from workers.backend import SynthesisBackend
from workers.engine import Engine, load_engine
from workers.frontend import TextFrontend
from workers.kokoro import KokoroBackend, split_phonemes
from workers.model_store import LoadedModel, ModelStore
from workers.worker import Worker, WorkerConfig

__all__ = [
    "Engine",
    "KokoroBackend",
    "LoadedModel",
    "ModelStore",
    "SynthesisBackend",
    "TextFrontend",
    "Worker",
    "WorkerConfig",
    "load_engine",
    "split_phonemes",
]
