"""Enqueue -> claim -> frames -> subscribe on a real redis-server, with the tiny ONNX model."""

from __future__ import annotations

import threading

import msgpack
import numpy as np
import pytest
import redis

from broker.producer import Producer
from chorus_client.keys import Keys
from chorus_client.protocol import AudioFrame, EndFrame, ErrorFrame, decode_frame
from gateway.subscriber import Subscriber
from shared.errors import RequestFailed
from tests.helpers import SAMPLES_PER_TOKEN
from workers.engine import Engine
from workers.worker import Worker, WorkerConfig

TEXT = "你好，世界！今天天气很好，我们一起去公园散步吧。"


def _frames(r: redis.Redis, keys: Keys, rid: str) -> list[object]:
    return [decode_frame(f[b"f"]) for _, f in r.xrange(keys.audio(rid))]


def _drain(worker: Worker) -> None:
    while worker.run_once():
        pass


@pytest.fixture()
def worker(r: redis.Redis, engine: Engine) -> Worker:
    return Worker(r, engine, config=WorkerConfig(name="w1", idle_wait_s=0.1))


def test_segments_become_ordered_frames_and_an_end_marker(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    res = Producer(r).enqueue(TEXT, tenant="acme")
    _drain(worker)
    frames = _frames(r, keys, res.request_id)
    audio = [f for f in frames if isinstance(f, AudioFrame)]
    assert isinstance(frames[-1], EndFrame) and frames[-1].segments == 2 and frames[-1].status == "ok"
    assert all(len(f.pcm) <= 2 * 2400 for f in audio), "frames are at most 100 ms"
    for seg in (0, 1):
        mine = [f for f in audio if f.segment == seg]
        assert [f.index for f in mine] == list(range(len(mine)))
        assert [f.last for f in mine] == [False] * (len(mine) - 1) + [True]
    pcm = np.frombuffer(b"".join(f.pcm for f in audio), dtype="<i2")
    assert np.abs(pcm.astype(np.int32)).max() < 32767, "tiny model peaks at 1.2: the limiter must hold"
    assert r.ttl(keys.audio(res.request_id)) > 0
    assert r.hget(keys.request(res.request_id), "status") == b"done"


def test_subscriber_hears_everything_in_order_while_a_worker_runs(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        res = Producer(r).enqueue(TEXT, tenant="acme")
        frames = list(Subscriber(r).frames(res.request_id, timeout_s=10))
    finally:
        worker.stop()
        thread.join(5)
    assert [(f.segment, f.index) for f in frames] == sorted((f.segment, f.index) for f in frames)
    assert {f.segment for f in frames} == {0, 1}
    total_samples = sum(len(f.pcm) for f in frames) // 2
    assert total_samples % SAMPLES_PER_TOKEN == 0 and total_samples > 30 * SAMPLES_PER_TOKEN


def test_break_pause_is_rendered_as_silence(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    res = Producer(r).enqueue('你好<break time="500ms"/>世界', tenant="acme")
    _drain(worker)
    seg0 = [f for f in _frames(r, keys, res.request_id) if isinstance(f, AudioFrame) and f.segment == 0]
    tail = np.frombuffer(b"".join(f.pcm for f in seg0), dtype="<i2")[-12000:]
    assert not tail.any(), "the last 500 ms of segment 0 is silence"


def test_malformed_foreign_entry_is_dead_lettered_and_the_worker_keeps_serving(
    r: redis.Redis, keys: Keys, worker: Worker
) -> None:
    p = Producer(r)
    good = p.enqueue("你好", tenant="acme")
    # a foreign producer's unreadable entry naming an existing request, and one for nobody:
    # neither can be tied to a segment, so both are dead-lettered and the request is untouched
    victim = p.enqueue("世界", tenant="acme")
    rt = keys.queue("acme", "rt")
    r.xadd(rt, {"r": victim.request_id, "p": b"\xc1garbage"})
    r.xadd(rt, {"junk": "1"})
    r.hincrby(keys.depth(), "acme:rt", 2)
    r.hincrby(keys.depth(), "acme", 2)
    _drain(worker)
    dead = r.xrange(keys.dead())
    assert len(dead) == 2
    assert all(b"malformed_entry" in e[1][b"reason"] for e in dead)
    assert isinstance(_frames(r, keys, good.request_id)[-1], EndFrame)
    assert isinstance(_frames(r, keys, victim.request_id)[-1], EndFrame)
    assert r.xlen(rt) == 0 and r.xpending(rt, "workers")["pending"] == 0


def test_broken_entry_with_a_readable_segment_fails_that_segment(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    """A payload that names its request and seq but breaks the protocol elsewhere fails that segment
    with an error frame that carries ``seg``, so the listener knows which segment to skip."""
    p = Producer(r)
    victim = p.enqueue("世界", tenant="acme")
    r.hincrby(keys.request(victim.request_id), "segments", 1)
    rt = keys.queue("acme", "rt")
    broken = msgpack.packb({"v": 1, "req": victim.request_id, "seq": 1, "text": 42}, use_bin_type=True)
    r.xadd(rt, {"r": victim.request_id, "p": broken})
    r.hincrby(keys.depth(), "acme:rt", 1)
    r.hincrby(keys.depth(), "acme", 1)
    _drain(worker)
    errors = [f for f in _frames(r, keys, victim.request_id) if isinstance(f, ErrorFrame)]
    assert [(e.code, e.segment) for e in errors] == [("malformed_entry", 1)]
    end = _frames(r, keys, victim.request_id)[-1]
    assert isinstance(end, EndFrame) and end.segments == 2 and end.status == "error"
    assert len(r.xrange(keys.dead())) == 1


def test_unknown_voice_in_a_foreign_entry_is_an_error_frame(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    res = Producer(r).enqueue("你好", tenant="acme")
    rt = keys.queue("acme", "rt")
    entry_id, fields = r.xrange(rt)[0]
    payload = msgpack.unpackb(fields[b"p"])
    payload["voice"] = "nobody"
    r.xdel(rt, entry_id)
    r.xadd(rt, {"r": res.request_id, "p": msgpack.packb(payload)})
    _drain(worker)
    with pytest.raises(RequestFailed, match="nobody"):
        list(Subscriber(r).frames(res.request_id, timeout_s=5))


def test_heartbeat_registers_the_worker(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    worker.heartbeat(force=True)
    assert r.zscore(keys.workers(), "w1") is not None
    assert b"jm_kumo" in (r.hget(keys.worker_info(), "w1") or b"")


def test_cancelled_request_is_dropped_without_synthesis(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    from broker.cancel import cancel

    rid = Producer(r).enqueue(TEXT, tenant="acme").request_id
    cancel(r, rid)
    _drain(worker)
    frames = _frames(r, keys, rid)
    assert not any(isinstance(f, AudioFrame) for f in frames), "nothing was synthesised"
    assert [f.status for f in frames if isinstance(f, EndFrame)] == ["cancelled"], "one end marker only"
    assert r.hget(keys.request(rid), "status") == b"cancelled"
    assert r.xlen(keys.queue("acme", "interactive")) == 0 and r.zcard(keys.leases()) == 0


def test_cancel_mid_segment_stops_at_the_next_frame(r: redis.Redis, keys: Keys, engine: Engine) -> None:
    from broker.cancel import cancel

    class CancelAfterFirstCall(Engine):
        def render(self, job):  # type: ignore[no-untyped-def]
            for i, piece in enumerate(super().render(job)):
                if i == 1:
                    cancel(r, job.request_id)
                yield piece

    slow = CancelAfterFirstCall(engine.backends, engine.frontends)
    long_segment = "，".join(["今天天气很好"] * 40) + "。"  # over 510 phonemes: several model calls
    w = Worker(r, slow, config=WorkerConfig(name="w2"))
    rid = Producer(r).enqueue([long_segment, "你好。"], tenant="acme", priority="batch").request_id
    _drain(w)
    audio = [f for f in _frames(r, keys, rid) if isinstance(f, AudioFrame)]
    assert audio and not any(f.last for f in audio if f.segment == 0), "segment 0 stopped before its end"
    assert {f.segment for f in audio} == {0}, "later segments were dropped"


def test_a_segment_past_its_deadline_gets_an_error_frame(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    rid = Producer(r).enqueue(TEXT, tenant="acme", deadline_s=0.05).request_id
    import time

    time.sleep(0.1)
    _drain(worker)
    frames = _frames(r, keys, rid)
    errors = [f for f in frames if isinstance(f, ErrorFrame)]
    assert errors and errors[0].code == "deadline_exceeded"
    assert not any(isinstance(f, AudioFrame) for f in frames)
    assert r.xlen(keys.dead()) == 0, "an expired segment is not a poison message"


def test_a_reclaimed_segment_is_served_with_its_attempt(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    from broker.claim import Claimer

    rid = Producer(r).enqueue("你好", tenant="acme").request_id
    Claimer(r).claim("crashed", 1, lease_ms=1)
    import time

    time.sleep(0.01)
    _drain(worker)
    audio = [f for f in _frames(r, keys, rid) if isinstance(f, AudioFrame)]
    assert audio and {f.attempt for f in audio} == {2}
    assert r.hget(keys.request(rid), "status") == b"done"


def test_exhausted_segment_is_dead_lettered_with_an_error_frame(r: redis.Redis, keys: Keys, engine: Engine) -> None:
    from broker.claim import Claimer

    rid = Producer(r).enqueue("你好", tenant="acme").request_id
    c = Claimer(r)
    c.claim("crash1", 1, lease_ms=1)
    import time

    time.sleep(0.01)
    c.reclaim("crash2", lease_ms=1, max_attempts=2)
    time.sleep(0.01)
    w = Worker(r, engine, config=WorkerConfig(name="w3", max_attempts=2))
    _drain(w)
    frames = _frames(r, keys, rid)
    assert [f.code for f in frames if isinstance(f, ErrorFrame)] == ["attempts_exhausted"]
    assert r.xlen(keys.dead()) == 1 and isinstance(frames[-1], EndFrame) and frames[-1].status == "error"


def test_an_end_marker_left_unwritten_by_a_dead_worker_is_written_by_another(
    r: redis.Redis, keys: Keys, engine: Engine
) -> None:
    from broker.claim import Claimer

    rid = Producer(r).enqueue("你好", tenant="acme").request_id
    c = Claimer(r)
    (item,) = c.claim("dies-before-the-marker", 1)
    assert c.complete(item, rid, ok=True, lease_ms=1).finished  # ...and the worker dies here
    assert r.zscore(keys.finishing(), rid) is not None
    import time

    time.sleep(0.01)
    Worker(r, engine, config=WorkerConfig(name="w4")).run_once()
    ends = [f for f in _frames(r, keys, rid) if isinstance(f, EndFrame)]
    assert [e.status for e in ends] == ["ok"] and r.zcard(keys.finishing()) == 0
