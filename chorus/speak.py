"""The demo path: text -> queue -> worker -> audio stream -> WAV, with its timings.

With no Redis given it runs everything privately: an embedded redis-server and
one worker thread, started (and the model loaded and warmed) before the clock
starts, shut down at the end. With a Redis URL it uses the workers attached
there. Without a voice, each segment is spoken by the catalog's default voice of its
language (Mandarin by Kokoro, English by Piper), at the first segment's sample rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from broker.lease import server_ms
from broker.producer import Producer
from chorus_client.constants import DEFAULT_SAMPLE_RATE, WORKER_LIVE_S
from chorus_client.keys import Keys
from gateway.subscriber import Subscriber
from shared.audio import WavWriter
from shared.config import RedisSettings
from shared.connection import client_url, sync_client
from shared.embedded import EmbeddedRedis
from shared.errors import NoWorkers
from workers.engine import Engine, load_engine
from workers.worker import Worker, WorkerConfig

__all__ = ["SpeakResult", "embedded_stack", "listen_to_wav", "live_workers", "speak"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeakResult:
    request_id: str
    segments: int
    first_audio_s: float
    total_s: float
    audio_s: float
    sample_rate: int = DEFAULT_SAMPLE_RATE
    voices: tuple[str, ...] = ()
    """Each segment's voice, in order."""

    @property
    def rtf(self) -> float:
        return self.total_s / self.audio_s if self.audio_s else float("inf")


def live_workers(client: redis.Redis, keys: Keys) -> int:
    """Workers with a heartbeat within the last few seconds, by the server's clock (as they beat)."""
    return int(client.zcount(keys.workers(), server_ms(client) - int(WORKER_LIVE_S * 1000), "+inf"))


@contextmanager
def embedded_stack(engine: Engine, keys: Keys | None = None) -> Iterator[redis.Redis]:
    """A private redis-server plus one worker thread serving ``engine``."""
    keys = keys or Keys()
    with EmbeddedRedis() as server:
        client = sync_client(RedisSettings.from_dsn(server.url))
        worker = Worker(
            sync_client(RedisSettings.from_dsn(server.url)), engine, keys=keys, config=WorkerConfig(idle_wait_s=0.2)
        )
        worker.heartbeat(force=True)
        thread = threading.Thread(target=worker.run, name="chorus-worker", daemon=True)
        thread.start()
        try:
            yield client
        finally:
            worker.stop()
            thread.join(timeout=30)
            client.close()


def listen_to_wav(
    client: redis.Redis,
    request_id: str,
    out: Path | str,
    *,
    keys: Keys | None = None,
    timeout_s: float = 60.0,
    started: float | None = None,
) -> tuple[float, float]:
    """Write a request's audio to ``out`` as it arrives; returns (first-audio time, audio seconds)."""
    started = started if started is not None else time.perf_counter()
    first: float | None = None
    writer: WavWriter | None = None
    try:
        for frame in Subscriber(client, keys).frames(request_id, timeout_s=timeout_s):
            if writer is None:
                writer = WavWriter(out, frame.sample_rate)
            if first is None and frame.pcm:
                first = time.perf_counter() - started
            writer.write(frame.pcm)
    finally:
        if writer is not None:
            writer.close()
    return (first or 0.0), (writer.seconds if writer else 0.0)


def speak(
    client: redis.Redis,
    text: str,
    out: Path | str,
    *,
    tenant: str = "default",
    voice: str | None = None,
    speed: float = 1.0,
    keys: Keys | None = None,
    timeout_s: float = 60.0,
) -> SpeakResult:
    keys = keys or Keys()
    if live_workers(client, keys) == 0:
        raise NoWorkers(client_url(client))
    t0 = time.perf_counter()
    result = Producer(client, keys=keys).enqueue(text, tenant=tenant, voice=voice, speed=speed)
    first, audio_s = listen_to_wav(client, result.request_id, out, keys=keys, timeout_s=timeout_s, started=t0)
    total = time.perf_counter() - t0
    return SpeakResult(result.request_id, result.segments, first, total, audio_s, result.sample_rate, result.voices)


def speak_embedded(text: str, out: Path | str, *, threads: int | None, device: str, **options: object) -> SpeakResult:
    engine = load_engine(threads=threads, device=device)
    with embedded_stack(engine) as client:
        return speak(client, text, out, **options)  # type: ignore[arg-type]
