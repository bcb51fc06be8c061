"""A paced tone backend and a worker process around it: capacity tests without a model.

:class:`PacedBackend` yields ``chunks`` pieces of 100 ms of a 220 Hz tone,
``chunk_s`` seconds apart, for every voice of the catalog. Benchmarks and fault
tests run real :class:`~workers.worker.Worker` processes on it, so the queue,
leases and gateway are measured with a synthesis time that is known and fixed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from workers.engine import Engine

__all__ = ["PACED_VOICES", "PacedBackend", "paced_engine", "run_paced_worker"]

PACED_VOICES: tuple[str, ...] = ("jm_kumo", "jf_alpha", "en_joe")
"""Voices a paced worker serves (the catalog's defaults and the tiny test model's)."""


class PacedBackend:
    """``chunks`` pieces of 100 ms of tone (24 kHz float32, amplitude 0.3), ``chunk_s`` apart."""

    model_id = "paced"
    device = "none"
    sample_rate = 24000

    def __init__(self, chunks: int, chunk_s: float) -> None:
        self.chunks, self.chunk_s = chunks, chunk_s
        t = np.arange(2400, dtype=np.float32) / 24000
        self._tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    def voices(self) -> list[str]:
        return list(PACED_VOICES)

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        for _ in range(self.chunks):
            time.sleep(self.chunk_s)
            yield self._tone


class _Identity:
    """A frontend that passes text through (the paced backend ignores phonemes)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def phonemize(self, text: str) -> str:
        return text


def paced_engine(chunks: int, chunk_s: float) -> Engine:
    backend = PacedBackend(chunks, chunk_s)
    return Engine(backends={v: backend for v in PACED_VOICES},
                  frontends={"zh": _Identity("zh"), "en": _Identity("en")})  # fmt: skip


def run_paced_worker(url: str, name: str, chunks: int, chunk_s: float, lease_s: float, reserve: int = 0) -> None:
    """Process target: a real Worker over ``url`` with a paced backend; SIGTERM stops it gracefully.
    ``reserve``: workers kept for tenants back from idle (see :class:`~workers.worker.WorkerConfig`)."""
    import signal

    from shared.config import RedisSettings
    from shared.connection import sync_client
    from workers.worker import Worker, WorkerConfig

    config = WorkerConfig(name=name, lease_s=lease_s, idle_wait_s=0.2, heartbeat_s=0.2, reserve=reserve)
    worker = Worker(sync_client(RedisSettings.from_dsn(url)), paced_engine(chunks, chunk_s), config=config)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()
