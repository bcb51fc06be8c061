"""A worker checks every claimed entry against its request before any audio is written.

Entries here are forged as a hostile tenant would: through the documented enqueue
script or with raw XADDs. Each must end in the dead-letter stream with its reason,
touch no other request, leave no key without an expiry, and the worker serves on.
"""

from __future__ import annotations

import msgpack
import pytest
import redis

from broker.claimed import Claimed
from broker.producer import Producer
from broker.scripts import ENQUEUE, script_source
from chorus_client.keys import GROUP, Keys
from chorus_client.protocol import AudioFrame, EndFrame, ErrorFrame, SegmentJob, decode_frame, encode_segment
from tests.helpers import keys_without_ttl
from workers.engine import Engine
from workers.worker import Worker, WorkerConfig


def _frames(r: redis.Redis, keys: Keys, rid: str) -> list[object]:
    return [decode_frame(f[b"f"]) for _, f in r.xrange(keys.audio(rid))]


def _drain(worker: Worker) -> None:
    while worker.run_once():
        pass


def _reasons(r: redis.Redis, keys: Keys) -> list[str]:
    return [e[1][b"reason"].decode() for e in r.xrange(keys.dead())]


@pytest.fixture()
def worker(r: redis.Redis, engine: Engine) -> Worker:
    return Worker(r, engine, config=WorkerConfig(name="w1", idle_wait_s=0.1))


def forge(
    r: redis.Redis,
    keys: Keys,
    tenant: str,
    rid: str,
    seq: int = 0,
    *,
    payload: bytes | None = None,
    segments: int = 1,
    lane: int = 2,
) -> None:
    """Run the documented enqueue script as a foreign producer would, with a request id of its choice
    (the request hash key is built by hand, so it may name another shard or another tenant's request).

    The script refuses a payload whose ``seq`` is not its position, so an entry for segment ``seq`` > 0
    is forged as a request of ``seq + 1`` segments whose first ``seq`` entries are then removed (and
    uncounted): what stays is one entry for segment ``seq``, as a raw XADD would leave it."""
    fake_rid = f"{keys.shard}.forged{seq:016d}"[: len(keys.shard) + 23]
    key_list = keys.enqueue_keys(tenant, f"chorus:{{{keys.shard}}}:req:{fake_rid}")
    script = r.register_script(script_source(ENQUEUE))
    total = seq + segments
    args: list[object] = [tenant, rid, "jm_kumo", 1, 0, 60, GROUP, total]
    for i in range(total):
        job = SegmentJob(rid, i, "你好", "jm_kumo", "zh", 1.0, 0, 1)
        args += [lane, 2, payload if payload is not None and i == seq else encode_segment(job)]
    stream = keys.queue(tenant, ("rt", "interactive", "batch")[lane - 1])
    before = r.xrevrange(stream, count=1)
    script(keys=key_list, args=args)
    r.delete(key_list[0])  # only the forged entry stays: the request it names is another one
    if seq:
        start = b"(" + before[0][0] if before else b"-"
        drop = [entry_id for entry_id, _ in r.xrange(stream, min=start, count=seq)]
        r.xdel(stream, *drop)
        lane_name = stream.rsplit(":", 1)[1]
        r.hincrby(keys.depth(), tenant, -len(drop))
        r.hincrby(keys.depth(), f"{tenant}:{lane_name}", -len(drop))


def test_an_entry_naming_another_shard_is_dead_lettered_and_the_worker_serves_on(
    r: redis.Redis, keys: Keys, worker: Worker
) -> None:
    forge(r, keys, "mallory", "s1.AAAAAAAAAAAAAAAAAAAAAA")
    _drain(worker)
    assert len(_reasons(r, keys)) == 1 and "not a request id of shard s0" in _reasons(r, keys)[0]
    good = Producer(r).enqueue("你好", tenant="alice")
    _drain(worker)
    assert isinstance(_frames(r, keys, good.request_id)[-1], EndFrame)
    assert keys_without_ttl(r) == []


def test_an_exhausted_entry_of_another_shard_does_not_kill_the_worker(
    r: redis.Redis, keys: Keys, worker: Worker
) -> None:
    forge(r, keys, "mallory", "s1.AAAAAAAAAAAAAAAAAAAAAA")
    [item] = worker.claimer.claim("w1", 1)
    exhausted = Claimed(item.stream, item.entry_id, item.fields, item.tenant, item.lane, item.cost_us, 4, True)
    worker.serve(exhausted)
    assert "malformed_entry" in _reasons(r, keys)[0]
    assert r.xpending(item.stream, GROUP)["pending"] == 0
    assert keys_without_ttl(r) == []


def test_a_forged_entry_cannot_touch_another_tenants_request(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    bob = Producer(r).enqueue(["你好", "世界"], tenant="bob")
    forge(r, keys, "mallory", bob.request_id, seq=0)
    forge(r, keys, "mallory", bob.request_id, seq=1)
    _drain(worker)
    frames = _frames(r, keys, bob.request_id)
    ends = [f for f in frames if isinstance(f, EndFrame)]
    assert len(ends) == 1 and ends[0].segments == 2 and ends[0].status == "ok"
    assert not [f for f in frames if isinstance(f, ErrorFrame)]
    last = [(f.segment, f.index) for f in frames if isinstance(f, AudioFrame) and f.last]
    assert sorted(s for s, _ in last) == [0, 1], "each of bob's segments once"
    assert r.hget(keys.request(bob.request_id), "done") == b"2"
    assert [x.split(":")[0] for x in _reasons(r, keys)] == ["tenant_mismatch", "tenant_mismatch"]


def test_seq_beyond_the_request_is_refused_not_synthesised(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    own = Producer(r).enqueue("你好", tenant="mallory")
    forge(r, keys, "mallory", own.request_id, seq=7)
    _drain(worker)
    assert _reasons(r, keys)[0].startswith("seq_out_of_range")
    frames = _frames(r, keys, own.request_id)
    assert {f.segment for f in frames if isinstance(f, AudioFrame)} == {0}
    assert isinstance(frames[-1], EndFrame) and frames[-1].status == "ok"


def test_a_second_entry_for_one_segment_is_a_duplicate(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    own = Producer(r).enqueue(["你好", "世界", "你好"], tenant="mallory")
    forge(r, keys, "mallory", own.request_id, seq=0, lane=1)  # real-time lane: served while the request runs
    _drain(worker)
    frames = _frames(r, keys, own.request_id)
    assert len([f for f in frames if isinstance(f, EndFrame)]) == 1
    assert sum(1 for f in frames if isinstance(f, AudioFrame) and f.last and f.segment == 0) == 1
    assert [x.split(":")[0] for x in _reasons(r, keys)] == ["duplicate_segment"]


def test_entries_for_a_finished_or_lost_request_write_nothing(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    done = Producer(r).enqueue("你好", tenant="mallory")
    lost = Producer(r).enqueue("世界", tenant="mallory")
    _drain(worker)
    before = r.xlen(keys.audio(done.request_id))
    forge(r, keys, "mallory", done.request_id, seq=0)
    forge(r, keys, "mallory", lost.request_id, seq=0)
    r.delete(keys.request(lost.request_id), keys.audio(lost.request_id))
    _drain(worker)
    assert r.xlen(keys.audio(done.request_id)) == before
    assert not r.exists(keys.audio(lost.request_id)), "a lost request's stream is not recreated"
    assert sorted(x.split(":")[0] for x in _reasons(r, keys)) == ["request_finished", "unknown_request"]
    assert keys_without_ttl(r) == []


def test_a_payload_that_crashes_the_backend_fails_only_its_segment(r: redis.Redis, keys: Keys, engine: Engine) -> None:
    class Exploding:
        lang = "zh"

        def phonemize(self, text: str) -> str:
            if "炸" in text:
                raise ZeroDivisionError("the frontend divided by zero")
            return "ni"

    worker = Worker(r, Engine(backends=engine.backends, frontends={"zh": Exploding()}), config=WorkerConfig(name="w1"))
    bad = Producer(r).enqueue(["你好", "炸"], tenant="mallory")
    good = Producer(r).enqueue("你好", tenant="alice")
    _drain(worker)
    errors = [f for f in _frames(r, keys, bad.request_id) if isinstance(f, ErrorFrame)]
    assert [(e.code, e.segment) for e in errors] == [("synthesis_failed", 1)]
    assert isinstance(_frames(r, keys, good.request_id)[-1], EndFrame)


def test_the_depth_counter_is_repaired_upwards_from_the_streams(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    """Entries XADDed without the enqueue script are found when the counter says the tenant is empty."""
    own = Producer(r).enqueue(["你好"] * 4, tenant="mallory")
    r.hset(keys.request(own.request_id), "segments", 6)
    for seq in (4, 5):
        job = SegmentJob(own.request_id, seq, "你好", "jm_kumo", "zh", 1.0, 0, 1)
        r.xadd(keys.queue("mallory", "interactive"), {"r": own.request_id, "p": encode_segment(job)})
    _drain(worker)
    frames = _frames(r, keys, own.request_id)
    assert {f.segment for f in frames if isinstance(f, AudioFrame)} == set(range(6))
    assert isinstance(frames[-1], EndFrame) and frames[-1].segments == 6
    assert r.hget(keys.depth(), "mallory") in (None, b"0")


def test_garbage_of_every_shape_never_raises(r: redis.Redis, keys: Keys, worker: Worker) -> None:
    own = Producer(r).enqueue("你好", tenant="mallory")
    shapes: list[dict[str, bytes]] = [
        {"r": b"\xff\xfe", "p": b"x"},
        {"r": own.request_id.encode(), "p": msgpack.packb([1, 2, 3])},
        {"r": own.request_id.encode(), "p": b"\x00" * 100_000},
        {"r": b"s0." + b"A" * 22, "p": msgpack.packb({"v": 1, "req": "s0." + "A" * 22, "seq": 0})},
        {"r": own.request_id.encode(), "p": msgpack.packb({"v": 1, "req": own.request_id, "seq": True})},
    ]
    for fields in shapes:
        r.xadd(keys.queue("mallory", "batch"), fields)  # type: ignore[arg-type]
    _drain(worker)
    assert len(_reasons(r, keys)) == len(shapes)
    assert isinstance(_frames(r, keys, own.request_id)[-1], EndFrame)
    assert worker.errors == 0 and keys_without_ttl(r) == []


def test_entries_of_an_idle_tenant_written_without_the_script_are_found_by_the_sweep(
    r: redis.Redis, keys: Keys, worker: Worker
) -> None:
    own = Producer(r).enqueue("你好", tenant="mallory")
    _drain(worker)  # mallory is idle now: off the ring, counter at zero
    r.hset(keys.request(own.request_id), mapping={"segments": 2, "status": "running"})
    job = SegmentJob(own.request_id, 1, "世界", "jm_kumo", "zh", 1.0, 0, 1)
    r.xadd(keys.queue("mallory", "batch"), {"r": own.request_id, "p": encode_segment(job)})
    r.delete(keys.sweep_lock())
    worker._last_sweep = worker._last_reclaim = float("-inf")
    _drain(worker)
    frames = _frames(r, keys, own.request_id)
    assert {f.segment for f in frames if isinstance(f, AudioFrame)} == {0, 1}
    assert isinstance(frames[-1], EndFrame) and frames[-1].segments == 2
    assert r.ttl(keys.sweep_lock()) > 0, "the sweep lock expires by itself"


def test_a_cancelled_requests_dropped_segments_are_not_counted_as_served(
    r: redis.Redis, keys: Keys, worker: Worker
) -> None:
    from broker.cancel import cancel
    from broker.stats import Stats

    res = Producer(r).enqueue(["你好", "世界", "再见"], tenant="acme")
    assert cancel(r, res.request_id)
    _drain(worker)
    [acme] = Stats(r, keys).snapshot(["acme"])
    assert sum(lane.served for lane in acme.lanes.values()) == 0, "nothing was synthesised"
    assert r.hget(keys.request(res.request_id), "done") == b"3", "yet every segment is settled"


def test_an_unexpected_error_after_admission_fails_the_segment_and_the_request_still_ends(
    r: redis.Redis, keys: Keys, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug between admission and completion (here: counting the text's weight) must not leave the
    request hanging: the segment it owned fails with an error frame and is counted."""
    import workers.worker as worker_module

    real, calls = worker_module.weight, []

    def failing_once(text: str) -> float:
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(text)

    monkeypatch.setattr(worker_module, "weight", failing_once)
    res = Producer(r).enqueue(["你好", "世界"], tenant="alice")
    _drain(worker)
    frames = _frames(r, keys, res.request_id)
    assert [(f.code, f.segment) for f in frames if isinstance(f, ErrorFrame)] == [("internal_error", 0)]
    end = frames[-1]
    assert isinstance(end, EndFrame) and end.segments == 2 and end.status == "error"
    assert _reasons(r, keys)[0].startswith("internal_error") and worker.errors == 1
    assert r.hget(keys.request(res.request_id), "done") == b"2"
