"""Test and benchmark doubles: real Workers around backends whose timing is known.

Tests and benchmarks measure the queue, the leases, the scheduler and the gateway,
not a model, so they run the real :class:`~workers.worker.Worker` over a real Redis
with a backend that stands in for one:

- :class:`NullBackend`: 100 ms of silence at once (the queue's own overhead);
- :class:`SleepBackend`: sleeps a fixed time per weighted character, then 20 ms of
  silence (synthesis time proportional to the text, as with a real model);
- :class:`PacedBackend`: ``chunks`` pieces of 100 ms of tone, ``chunk_s`` apart (a
  kill or a fault lands mid-segment).

Worker processes are started with multiprocessing's spawn: the process targets
(:func:`run_worker`, :func:`run_paced_worker`) and the engine builders are
module-level functions, so they and their arguments (``functools.partial`` of a
builder, a :class:`~workers.worker.WorkerConfig`) pickle. :func:`wait_for_workers`
waits, with a deadline, until they heartbeat.

Not for production: nothing here synthesises speech. It imports chorus's runtime
dependencies only, so benchmarks need no test extras (the ``bench`` extra adds the
load clients).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import signal
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis

from chorus.speak import live_workers
from chorus_client.constants import DEFAULT_SAMPLE_RATE, WORKER_LIVE_S
from chorus_client.keys import Keys
from chorus_client.segment import weight
from shared.config import RedisSettings
from shared.connection import sync_client
from workers.backend import SynthesisBackend
from workers.engine import Engine
from workers.worker import Worker, WorkerConfig

__all__ = [
    "VOICES",
    "EngineBuilder",
    "IdentityFrontend",
    "NullBackend",
    "PacedBackend",
    "SleepBackend",
    "double_engine",
    "null_engine",
    "paced_config",
    "paced_engine",
    "read_wav",
    "run_paced_worker",
    "run_worker",
    "sleep_engine",
    "speech_like",
    "start_worker",
    "start_workers",
    "stop_processes",
    "wait_for_workers",
]

VOICES: tuple[str, ...] = ("zm_yunxi", "jm_kumo", "jf_alpha", "en_joe")
"""Voices the doubles serve: the catalog's defaults and the tiny test model's."""

# -- backends and frontend ------------------------------------------------------------------


class NullBackend:
    """A fixed stretch of silence (100 ms by default) at once: measures the queue, not a model."""

    model_id = "null"
    device = "none"

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, samples: int = DEFAULT_SAMPLE_RATE // 10) -> None:
        self.sample_rate = sample_rate
        self._audio = np.zeros(samples, dtype=np.float32)

    def voices(self) -> list[str]:
        return list(VOICES)

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        yield self._audio


class SleepBackend:
    """Sleeps ``ms_per_char`` per weighted character of the text (:func:`chorus_client.segment.weight`:
    a CJK character counts 1, others 0.4), then yields 20 ms of silence."""

    model_id = "sleep"
    device = "none"
    sample_rate = DEFAULT_SAMPLE_RATE

    def __init__(self, ms_per_char: float) -> None:
        self.ms_per_char = ms_per_char
        self._audio = np.zeros(DEFAULT_SAMPLE_RATE // 50, dtype=np.float32)

    def voices(self) -> list[str]:
        return list(VOICES)

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        time.sleep(weight(phonemes) * self.ms_per_char / 1000)
        yield self._audio


class PacedBackend:
    """``chunks`` pieces of 100 ms of a 220 Hz tone (amplitude 0.3), each after ``chunk_s`` seconds."""

    model_id = "paced"
    device = "none"
    sample_rate = DEFAULT_SAMPLE_RATE

    def __init__(self, chunks: int, chunk_s: float) -> None:
        self.chunks, self.chunk_s = chunks, chunk_s
        t = np.arange(DEFAULT_SAMPLE_RATE // 10, dtype=np.float32) / DEFAULT_SAMPLE_RATE
        self._tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    def voices(self) -> list[str]:
        return list(VOICES)

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        for _ in range(self.chunks):
            time.sleep(self.chunk_s)
            yield self._tone


class IdentityFrontend:
    """A frontend that passes text through as phonemes (the doubles read no phonemes)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def phonemize(self, text: str) -> str:
        return text


# -- engines --------------------------------------------------------------------------------


def double_engine(backend: SynthesisBackend) -> Engine:
    """``backend`` for every voice of :data:`VOICES`, identity frontends for Mandarin and English."""
    return Engine(
        backends={v: backend for v in VOICES},
        frontends={lang: IdentityFrontend(lang) for lang in ("zh", "en")},
    )


def null_engine() -> Engine:
    return double_engine(NullBackend())


def sleep_engine(ms_per_char: float) -> Engine:
    return double_engine(SleepBackend(ms_per_char))


def paced_engine(chunks: int, chunk_s: float) -> Engine:
    return double_engine(PacedBackend(chunks, chunk_s))


# -- worker processes -----------------------------------------------------------------------

EngineBuilder = Callable[[], Engine]
"""Builds the engine inside the worker process: a module-level function or a ``functools.partial``
of one (``partial(paced_engine, 4, 0.1)``), so that it pickles for multiprocessing's spawn."""


def run_worker(
    url: str,
    name: str,
    engine: EngineBuilder,
    config: WorkerConfig | None = None,
    *,
    worker_class: type[Worker] = Worker,
) -> Worker:
    """Process target: a real ``worker_class`` named ``name`` over ``url`` serving ``engine()``, with
    ``config`` (its name replaced), until SIGTERM stops it gracefully; returns the stopped worker."""
    config = dataclasses.replace(config or WorkerConfig(), name=name)
    worker = worker_class(sync_client(RedisSettings.from_dsn(url)), engine(), config=config)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()
    return worker


def paced_config(lease_s: float, reserve: int = 0) -> WorkerConfig:
    """The config of a paced worker: quick to notice work (0.2 s idle wait) and to heartbeat."""
    return WorkerConfig(lease_s=lease_s, idle_wait_s=0.2, heartbeat_s=0.2, reserve=reserve)


def run_paced_worker(url: str, name: str, chunks: int, chunk_s: float, lease_s: float, reserve: int = 0) -> None:
    """Process target: :func:`run_worker` with :func:`paced_engine` and :func:`paced_config`.
    ``reserve``: workers kept for tenants back from idle (see :class:`~workers.worker.WorkerConfig`)."""
    run_worker(url, name, partial(paced_engine, chunks, chunk_s), paced_config(lease_s, reserve))


def start_worker(
    url: str, name: str, engine: EngineBuilder, config: WorkerConfig | None = None, *, daemon: bool = True
) -> BaseProcess:
    """Start one :func:`run_worker` process (spawned) named ``name``."""
    proc = mp.get_context("spawn").Process(
        target=run_worker, args=(url, name, engine, config), name=name, daemon=daemon
    )
    proc.start()
    return proc


def start_workers(
    url: str,
    n: int,
    engine: EngineBuilder,
    config: WorkerConfig | None = None,
    *,
    prefix: str = "worker-",
    daemon: bool = True,
) -> list[BaseProcess]:
    """Start ``n`` :func:`run_worker` processes named ``<prefix>0`` .. ``<prefix><n-1>``."""
    return [start_worker(url, f"{prefix}{i}", engine, config, daemon=daemon) for i in range(n)]


def stop_processes(procs: Sequence[BaseProcess], timeout_s: float = 10.0) -> None:
    """SIGTERM every process still alive (a worker finishes its segment), join each for up to
    ``timeout_s``, SIGKILL those still running."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout_s)
        if p.is_alive():
            p.kill()
            p.join()


def wait_for_workers(
    client: redis.Redis, keys: Keys, n: int, deadline_s: float = 30.0, *, procs: Sequence[BaseProcess] = ()
) -> int:
    """Wait until at least ``n`` workers are live (a heartbeat within ``WORKER_LIVE_S`` by the server's
    clock) and return how many are; TimeoutError after ``deadline_s``, RuntimeError at once if one
    of ``procs`` has exited."""
    deadline = time.monotonic() + deadline_s
    while (live := live_workers(client, keys)) < n:
        if dead := [f"{p.name} (exit code {p.exitcode})" for p in procs if p.exitcode is not None]:
            raise RuntimeError(f"worker processes exited before {n} workers were live: {', '.join(dead)}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{live} of {n} workers live after {deadline_s:g} s (a heartbeat within "
                f"{WORKER_LIVE_S:g} s by the server's clock in {keys.workers()})"
            )
        time.sleep(0.05)
    return live


# -- audio ----------------------------------------------------------------------------------


def speech_like(rate: int, seconds: float, seed: int) -> npt.NDArray[np.int16]:
    """Speech-like PCM16 [rate * seconds] at ``rate`` Hz: harmonics on a gliding pitch, a syllable-rate
    envelope, a little noise. Not periodic, so a correlation finds one offset (codec tests and benches)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(120 + 60 * np.sin(2 * np.pi * 0.7 * t + seed)) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
    return np.asarray(harmonics * envelope * 6000 + rng.normal(0, 300, t.size)).astype(np.int16)


def read_wav(path: str | Path) -> tuple[npt.NDArray[np.int16], int]:
    """The samples and sample rate of a mono PCM16 WAV (what ``chorus speak`` writes)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono PCM16")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()
