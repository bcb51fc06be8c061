"""Fault injection on real redis-server and worker processes: kill -9, SIGTERM, Redis restart with AOF.

The workers run the real Worker with a backend that yields 100 ms of audio per
chunk, a chunk every few tens of milliseconds, so a kill lands mid-segment.
What the client hears is checked frame by frame: every segment, in order, each
frame once, ended by the end marker.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from broker.producer import Producer
from chorus.testing import run_paced_worker, wait_for_workers
from chorus_client.keys import GROUP, Keys
from chorus_client.protocol import AudioFrame, decode_frame
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis
from shared.errors import RedisUnavailable

pytestmark = pytest.mark.slow
CHUNKS = 6  # frames per segment
TEXT = ["第一段。", "第二段。", "第三段。", "第四段。", "第五段。"]


class Workers:
    def __init__(self, url: str, n: int, chunk_s: float = 0.05, lease_s: float = 1.0) -> None:
        ctx = mp.get_context("spawn")
        self.procs = {
            f"fw{i}": ctx.Process(target=run_paced_worker, args=(url, f"fw{i}", CHUNKS, chunk_s, lease_s))
            for i in range(n)
        }
        for p in self.procs.values():
            p.start()

    def wait_ready(self, r: redis.Redis) -> None:
        wait_for_workers(r, Keys(), len(self.procs), 30, procs=list(self.procs.values()))

    def close(self) -> None:
        for p in self.procs.values():
            if p.is_alive():
                p.kill()
            p.join(10)


@pytest.fixture()
def workers(redis_url: str, r: redis.Redis) -> Iterator[Workers]:
    w = Workers(redis_url, 2)
    w.wait_ready(r)
    yield w
    w.close()


def _heard(r: redis.Redis, rid: str, timeout_s: float = 30) -> list[AudioFrame]:
    frames = list(Subscriber(r).frames(rid, timeout_s=timeout_s))
    got = [(f.segment, f.index) for f in frames]
    expected = [(s, i) for s in range(len(TEXT)) for i in range(CHUNKS)]
    assert got == expected, "every frame of every segment, in order, exactly once"
    return frames


def _serving(r: redis.Redis, rid: str) -> str:
    """Wait until some worker is mid-segment on the request (a frame out, not the last); return its name."""
    keys = Keys()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for stream in (keys.queue("t", "rt"), keys.queue("t", "interactive")):
            if not r.exists(stream):
                continue
            for p in r.xpending_range(stream, GROUP, "-", "+", 10):
                if r.xlen(keys.audio(rid)) > 2:  # header + at least two frames
                    return str(p["consumer"].decode())
        time.sleep(0.005)
    raise AssertionError("no worker started the request")


def test_kill_9_mid_segment_the_client_still_hears_everything_once(r: redis.Redis, workers: Workers) -> None:
    rid = Producer(r).enqueue(TEXT, tenant="t").request_id
    victim = _serving(r, rid)
    os.kill(workers.procs[victim].pid, signal.SIGKILL)  # type: ignore[arg-type]
    t0 = time.monotonic()
    frames = _heard(r, rid)
    assert max(f.attempt for f in frames) == 2, "the killed worker's segment was served again"
    assert time.monotonic() - t0 < 10, "reclaimed within the lease and a poll"
    assert r.hget(Keys().request(rid), "status") == b"done"


def test_sigterm_drains_the_segment_in_progress(r: redis.Redis, workers: Workers) -> None:
    rid = Producer(r).enqueue(TEXT, tenant="t").request_id
    victim = _serving(r, rid)
    proc = workers.procs[victim]
    os.kill(proc.pid, signal.SIGTERM)  # type: ignore[arg-type]
    proc.join(10)
    assert proc.exitcode == 0, "it stopped by itself"
    frames = _heard(r, rid)
    assert {f.attempt for f in frames} == {1}, "nothing had to be redone: the segment in progress was finished"
    assert r.zscore(Keys().workers(), victim) is None, "it deregistered"


def test_redis_restart_with_aof_loses_no_accepted_request(tmp_path: Path) -> None:
    server = EmbeddedRedis(appendonly=True, appendfsync="always", data_dir=tmp_path)
    server.start()
    w = None
    try:
        r = sync_client(RedisSettings.from_dsn(server.url))
        w = Workers(server.url, 2, chunk_s=0.01)
        w.wait_ready(r)
        ids = [Producer(r).enqueue(TEXT, tenant="t").request_id for _ in range(20)]
        listened: list[object] = []

        def listen() -> None:  # a listener that is mid-stream when Redis dies, and reads on after
            try:
                listened.extend(Subscriber(r).frames(ids[-1], timeout_s=60))
            except Exception as exc:  # reported below
                listened.append(exc)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(0.5)
        server.kill()  # SIGKILL mid-run
        t0 = time.monotonic()
        with pytest.raises(RedisUnavailable):
            Producer(r).enqueue(TEXT, tenant="t")
        assert time.monotonic() - t0 < 5, "a producer facing a down Redis fails fast"
        server.start()  # same port, same data directory: replays the append-only file
        for rid in ids:
            _heard(r, rid, timeout_s=60)
        listener.join(60)
        heard = [(f.segment, f.index) for f in listened if isinstance(f, AudioFrame)]
        assert heard == [(s, i) for s in range(len(TEXT)) for i in range(CHUNKS)], listened[-1:]
    finally:
        if w is not None:
            w.close()
        server.stop()


def test_cancel_mid_request_with_worker_processes(r: redis.Redis, workers: Workers) -> None:
    from broker.cancel import cancel
    from shared.errors import RequestCancelled

    long_request = [f"第{i}段。" for i in range(40)]
    rid = Producer(r).enqueue(long_request, tenant="t").request_id
    _serving(r, rid)
    assert cancel(r, rid)
    heard: list[AudioFrame] = []
    with pytest.raises(RequestCancelled):
        for frame in Subscriber(r).frames(rid, timeout_s=10):
            heard.append(frame)
    time.sleep(1.0)  # let the workers reach their next frame boundary
    keys = Keys()
    segments_with_audio = {
        decode_frame(f[b"f"]).segment
        for _, f in r.xrange(keys.audio(rid))
        if isinstance(decode_frame(f[b"f"]), AudioFrame)
    }
    assert len(segments_with_audio) < 10, "queued segments were dropped, not synthesised"
    assert r.hget(keys.request(rid), "status") == b"cancelled"
    assert r.zcard(keys.leases()) == 0 and r.hget(keys.depth(), "t") in (None, b"0")
