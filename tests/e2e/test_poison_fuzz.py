"""Fuzz: a hostile producer's lane-stream entries never take the workers down nor harm other tenants.

Two real worker processes (paced tone backend) serve a real redis-server. In each
Hypothesis example the polite tenants ``alice`` and ``bob`` enqueue valid requests,
interleaved with entries that tenant ``mallory`` writes into her own lane streams:
with raw XADDs (the depth counter bumped or not) and through the documented enqueue
script with a hand-built request key. The entries name no request, requests of
another shard, never-enqueued ids, polite tenants' live, finished and cancelled
requests, and mallory's own live, finished and cancelled ones; their payloads are
well-formed, out of range, of wrong types, truncated, nested, empty, up to 1 MB, or
random bytes, next to random extra fields.

Once every request has ended the test proves:

1. every polite request is heard exactly once: every segment in order, each frame
   once (the raw audio stream holds no frame twice, no error frame, one ``ok`` end
   marker) and the request counts each segment once;
2. both worker processes are alive and heartbeating;
3. every hostile entry is in the dead-letter stream exactly once, with a non-empty
   reason whose code is the one its content calls for, and no polite tenant's entry
   is dead-lettered. The only entries allowed to escape are well-formed ones naming
   an in-range segment of one of mallory's own unfinished requests: such an entry is
   indistinguishable from the real one, and whichever of them is admitted first owns
   the segment. An entry that escapes must own its segment (``o:<seq>`` of the
   request) and the real entry of that segment must have been turned away
   (``duplicate_segment`` or ``request_finished``);
4. no Redis key is left without an expiry except the deployment's own keys;
5. every lane stream is empty, every pending list and lease is gone, the depth and
   in-flight counters are back to zero and every request, mallory's included, counts
   exactly its segments (none twice).

Stream entry ids are unique per stream only: mallory may give a forged entry the id
of her real entry of the same segment in another lane (channel ``reuse``; ``*`` ids
of two lanes collide by chance too). Admission must still tell the two apart.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from redis.commands.core import Script

from broker.cancel import cancel
from broker.producer import Producer
from broker.scripts import ENQUEUE, script_source
from chorus.testing import run_paced_worker, stop_processes, wait_for_workers
from chorus_client.keys import GROUP, LANES, Keys, new_request_id
from chorus_client.protocol import (
    AudioFrame,
    EndFrame,
    ErrorFrame,
    SegmentJob,
    decode_frame,
    encode_segment,
    peek_segment_address,
)
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import as_str, sync_client
from shared.embedded import EmbeddedRedis
from tests.helpers import keys_without_ttl

pytestmark = pytest.mark.slow

CHUNKS, CHUNK_S, LEASE_S = 2, 0.005, 2.0
"""Paced backend: frames per segment, seconds per frame; lease of a claimed segment."""
WORKERS = ("pf0", "pf1")
MALLORY = "mallory"
POLITE = ("alice", "bob")
KEYS = Keys()
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
WAIT_S = 20.0
DELETE = object()
"""Mutation marker: remove the key from the payload map."""

MUTATIONS: tuple[tuple[str, object], ...] = (
    ("v", 2), ("v", "1"), ("v", None), ("v", DELETE),
    ("req", 123), ("req", b"\x00bin"), ("req", "x" * 65), ("req", DELETE),
    ("seq", "0"), ("seq", 0.0), ("seq", True), ("seq", None), ("seq", [0]), ("seq", DELETE),
    ("text", 42), ("text", None), ("text", b"bytes"), ("text", "汉" * 700), ("text", msgpack.ExtType(5, b"x")),
    ("text", DELETE),
    ("voice", ""), ("voice", "v" * 65), ("voice", 7), ("voice", DELETE),
    ("lang", None), ("lang", "x" * 17), ("lang", DELETE),
    ("speed", "fast"), ("speed", float("nan")), ("speed", float("inf")), ("speed", 0.1), ("speed", 5.0),
    ("speed", True), ("speed", DELETE),
    ("pause_ms", -1), ("pause_ms", 10_001), ("pause_ms", 1.5), ("pause_ms", DELETE),
    ("t", -1), ("t", 2**53 + 1), ("t", "now"), ("t", 2**64 - 1), ("t", msgpack.Timestamp(0, 0)), ("t", DELETE),
    ("*", "every key as binary"),
)  # fmt: skip
"""One change each that makes a segment payload malformed (docs/PROTOCOL.md's table)."""

TARGETS = (
    "garbage",
    "none",
    "other_shard",
    "unknown",
    "suffixed",
    "polite_live",
    "polite_done",
    "polite_cancelled",
    "mallory_live",
    "mallory_done",
    "mallory_cancelled",
)
"""What field ``r`` names: random bytes, nothing, an id of shard s1, an s0 id never enqueued,
mallory's live id with a trailing newline, or a request of a polite tenant or of mallory."""
PAYLOADS = (
    "valid",
    "out_of_range",
    "over_limit",
    "mutated",
    "mismatch",
    "empty",
    "missing",
    "random",
    "not_map",
    "deep",
    "truncated",
    "huge_random",
    "huge_map",
)


# -- the stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    r: redis.Redis
    procs: dict[str, SpawnProcess]
    producer: Producer
    enqueue: Script
    """The enqueue script, registered on ``r`` (run inside MULTI by :func:`_forge`)."""


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis) -> Iterator[Stack]:
    """Two worker processes for the whole module (processes are expensive, examples are many)."""
    r = sync_client(RedisSettings.from_dsn(redis_server.url))
    r.flushall()
    ctx = mp.get_context("spawn")
    procs = {
        name: ctx.Process(target=run_paced_worker, args=(redis_server.url, name, CHUNKS, CHUNK_S, LEASE_S), daemon=True)
        for name in WORKERS
    }
    for p in procs.values():
        p.start()
    try:
        wait_for_workers(r, KEYS, len(WORKERS), 60, procs=list(procs.values()))
        yield Stack(r, procs, Producer(r), r.register_script(script_source(ENQUEUE)))
    finally:
        stop_processes(list(procs.values()))  # SIGTERM: graceful stop
        r.close()


def _wait(cond: Callable[[], bool], what: str, timeout_s: float = WAIT_S, detail: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"{what}\n{detail()}"
        time.sleep(0.02)


def _state(r: redis.Redis, reqs: list[Req]) -> str:
    """The queue's state and the requests' hashes, for a failure message."""
    lines = [f"{req}: {r.hgetall(KEYS.request(req.rid))}" for req in reqs]
    for tenant in (*POLITE, MALLORY):
        for lane in LANES:
            key = KEYS.queue(tenant, lane)
            if r.exists(key):
                groups = [(g["name"], g["pending"], g["last-delivered-id"]) for g in r.xinfo_groups(key)]
                lines.append(f"{key}: {[(as_str(i), sorted(f)) for i, f in r.xrange(key)]} groups {groups}")
    for name in (KEYS.depth(), KEYS.drr()):
        lines.append(f"{name}: {r.hgetall(name)}")
    for name in (KEYS.active(), KEYS.fresh(), KEYS.wake()):
        lines.append(f"{name}: {r.lrange(name, 0, -1)}")
    lines.append(f"active set: {r.smembers(KEYS.active_set())}")
    lines.append(f"leases: {r.zrange(KEYS.leases(), 0, -1, withscores=True)}")
    lines.append(f"finishing: {r.zrange(KEYS.finishing(), 0, -1, withscores=True)}")
    return "\n".join(lines)


# -- scenarios -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Polite:
    tenant: str
    segments: int
    priority: str


@dataclass(frozen=True)
class Hostile:
    """One entry mallory writes; everything the entry holds is derived from these draws."""

    target: str
    pick: int
    payload: str
    offset: int
    mutation: int
    size: int
    seed: int
    voice: str
    lang: str
    chars: bytes | None
    extra: dict[bytes, bytes]
    channel: str
    """``raw``: XADD alone; ``counted``: XADD and bump the depth counter; ``script``: enqueue.lua;
    ``reuse``: as ``counted``, with the id of the real entry of the same segment (in another lane)."""
    lane: str
    junk: bytes
    token: str


@dataclass(frozen=True)
class Scenario:
    polite: list[Polite]
    mallory: list[int]
    """Segment counts of mallory's own valid requests, enqueued before the hostile entries."""
    hostile: list[Hostile]
    order: list[int]
    """Interleaving: index < len(polite) is a polite enqueue, the others hostile entries."""


CHARS = (b"1", b"0", b"-5", b"99999999999", b"nan", b"1e400", b"0x10", b"")
"""Values of field ``c`` (weighted characters) besides random bytes."""
field_names = st.binary(max_size=8).filter(lambda k: k not in (b"r", b"p", b"c"))
"""Random extra fields next to (or instead of) ``r``, ``p`` and ``c``."""
polite_specs = st.builds(Polite, st.sampled_from(POLITE), st.integers(1, 4), st.sampled_from(["interactive", "batch"]))
hostile_specs = st.builds(
    Hostile,
    target=st.one_of(st.sampled_from(TARGETS[5:]), st.sampled_from(TARGETS)),  # requests of ours half the time
    pick=st.integers(0, 7),
    payload=st.one_of(st.sampled_from(PAYLOADS[:2]), st.sampled_from(PAYLOADS)),  # well-formed half the time
    offset=st.integers(0, 40),
    mutation=st.integers(0, len(MUTATIONS) - 1),
    size=st.integers(8 * 1024 + 1, 1_000_000),
    seed=st.integers(0, 2**32),
    voice=st.sampled_from(["jm_kumo", "en_joe", "nobody"]),
    lang=st.sampled_from(["zh", "en", "xx"]),
    chars=st.one_of(st.none(), st.sampled_from(CHARS), st.binary(max_size=12)),
    extra=st.dictionaries(field_names, st.binary(max_size=48), max_size=4),
    channel=st.sampled_from(["raw", "counted", "script", "reuse"]),
    lane=st.sampled_from(LANES),
    junk=st.binary(max_size=40),
    token=st.text(URLSAFE, min_size=22, max_size=22),
)


def _reusing(seq: int) -> Hostile:
    return Hostile(
        target="mallory_live",
        pick=0,
        payload="valid",
        offset=seq,
        mutation=0,
        size=0,
        seed=0,
        voice="jm_kumo",
        lang="zh",
        chars=b"2",
        extra={},
        channel="reuse",
        lane="batch",
        junk=b"",
        token="A" * 22,
    )


REUSE_ATTACK = Scenario([Polite("alice", 2, "interactive")], [4], [_reusing(3), _reusing(2)], [1, 2, 0])
"""Always tried: mallory forges her 4-segment request's segments 3 and 2 with the ids of their real
entries, in another lane (both are still queued when she writes)."""


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    polite = draw(st.lists(polite_specs, min_size=1, max_size=3))
    mallory = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    hostile = draw(st.lists(hostile_specs, min_size=4, max_size=16))
    order = draw(st.permutations(range(len(polite) + len(hostile))))
    return Scenario(polite, mallory, hostile, list(order))


# -- requests and hostile entries ----------------------------------------------------------


@dataclass(frozen=True)
class Req:
    rid: str
    tenant: str
    segments: int


@dataclass
class Pools:
    polite_live: list[Req]
    polite_done: Req
    polite_cancelled: Req
    mallory_live: list[Req]
    mallory_done: Req
    mallory_cancelled: Req


@dataclass(frozen=True)
class Written:
    """A hostile entry as written, and what must become of it."""

    stream: str
    entry_id: str
    spec: Hostile
    rid: str | None
    seq: int
    may_own: bool
    """Well-formed, naming an in-range segment of mallory's own unfinished request: it may own it."""
    code: str | None
    """Dead-letter code its content calls for; None where several are legitimate."""


def _texts(n: int) -> list[str]:
    return [f"第{i}段。" for i in range(n)]


def _enqueue(stack: Stack, tenant: str, segments: int, priority: str = "interactive") -> Req:
    res = stack.producer.enqueue(_texts(segments), tenant=tenant, priority=priority)
    assert res.segments == segments
    return Req(res.request_id, tenant, segments)


def _target(spec: Hostile, pools: Pools) -> tuple[bytes | None, Req | None]:
    """Field ``r`` of the entry and the request it names (None: not one of ours)."""
    pick = spec.pick
    if spec.target == "garbage":
        return spec.junk, None
    if spec.target == "none":
        return None, None
    if spec.target == "other_shard":
        return f"s1.{spec.token}".encode(), None
    if spec.target == "unknown":
        return f"{KEYS.shard}.{spec.token}".encode(), None
    if spec.target == "suffixed":
        own = pools.mallory_live[pick % len(pools.mallory_live)]
        return f"{own.rid}\n".encode(), None
    req = {
        "polite_live": pools.polite_live[pick % len(pools.polite_live)] if pools.polite_live else pools.polite_done,
        "polite_done": pools.polite_done,
        "polite_cancelled": pools.polite_cancelled,
        "mallory_live": pools.mallory_live[pick % len(pools.mallory_live)],
        "mallory_done": pools.mallory_done,
        "mallory_cancelled": pools.mallory_cancelled,
    }[spec.target]
    return req.rid.encode(), req


def _job_map(rid: str, seq: int, spec: Hostile) -> dict[object, object]:
    job = SegmentJob(rid, seq, "你好", spec.voice, spec.lang, 1.0, 0, int(time.time() * 1000))
    obj: dict[object, object] = msgpack.unpackb(encode_segment(job))
    return obj


def _payload(spec: Hostile, rid: str, req: Req | None) -> tuple[bytes | None, int]:
    """The entry's field ``p`` (None: absent) and the seq it names."""
    rng = random.Random(spec.seed)
    seq = spec.offset % req.segments if req else spec.offset
    kind = spec.payload
    if kind == "valid":
        return msgpack.packb(_job_map(rid, seq, spec)), seq
    if kind == "out_of_range":
        seq = (req.segments if req else 5) + spec.offset
        return msgpack.packb(_job_map(rid, seq, spec)), seq
    if kind == "over_limit":
        seq = (2048, 2**31, -1, 2**64 - 1)[spec.offset % 4]
        return msgpack.packb({**_job_map(rid, 0, spec), "seq": seq}), seq
    if kind == "mutated":
        key, bad = MUTATIONS[spec.mutation]
        obj = _job_map(rid, seq, spec)
        if key == "*":
            obj = {str(k).encode(): v for k, v in obj.items()}
        elif bad is DELETE:
            del obj[key]
        else:
            obj[key] = bad
        return msgpack.packb(obj, use_bin_type=True), seq
    if kind == "mismatch":  # a well-formed payload of another request than field r names
        return msgpack.packb(_job_map(new_request_id(KEYS.shard), seq, spec)), seq
    if kind == "empty":
        return b"", seq
    if kind == "missing":
        return None, seq
    if kind == "random":
        return rng.randbytes(spec.size % 64), seq
    if kind == "not_map":
        return msgpack.packb(([1, 2, 3], 7, rid, None)[spec.offset % 4]), seq
    if kind == "deep":  # arrays nested thousands deep, within the size limit
        return b"\x91" * 8000 + b"\xc0", seq
    if kind == "truncated":
        whole = msgpack.packb(_job_map(rid, seq, spec))
        return whole[: len(whole) * (spec.offset % 10) // 10], seq
    if kind == "huge_random":
        return rng.randbytes(spec.size), seq
    assert kind == "huge_map"
    return msgpack.packb({**_job_map(rid, seq, spec), "text": "x" * spec.size}), seq


def _expected_code(spec: Hostile) -> str | None:
    # a live id with a trailing newline is not a request id at all (names are checked with fullmatch)
    if spec.target in ("garbage", "none", "other_shard", "suffixed") or spec.payload not in ("valid", "out_of_range"):
        return "malformed_entry"
    if spec.target == "unknown":
        return "unknown_request"
    if spec.target.startswith("polite"):
        return "tenant_mismatch"
    if spec.payload == "out_of_range":
        return "seq_out_of_range"
    if spec.target == "mallory_done":
        return "request_finished"
    return None  # mallory's live or cancelled request, well-formed, seq in range: duplicate, failed, or owner


def _write(stack: Stack, spec: Hostile, pools: Pools) -> Written | None:
    r_field, req = _target(spec, pools)
    named = spec.target not in ("garbage", "none")  # field r is an id (of ours or not): the payload repeats it
    rid = as_str(r_field) if named and r_field is not None else f"{KEYS.shard}.{spec.token}"
    payload, seq = _payload(spec, rid, req)
    lane, explicit = spec.lane, None
    if spec.channel == "reuse" and req is not None and req.tenant == MALLORY:
        lane, explicit = _reusable(stack.r, req, seq) or (lane, None)
    stream = KEYS.queue(MALLORY, lane)
    if spec.channel == "script":
        forged = _forge(stack, lane, r_field or b"", payload or b"", spec.chars or b"1")
        if forged is None:
            return None  # refused by the script: nothing reached a worker
        entry_id = forged
    else:
        fields: dict[bytes, bytes] = dict(spec.extra)
        if r_field is not None:
            fields[b"r"] = r_field
        if payload is not None:
            fields[b"p"] = payload
        if spec.chars is not None:
            fields[b"c"] = spec.chars
        fields = fields or {b"": b""}
        pipe = stack.r.pipeline(transaction=True)
        pipe.xadd(stream, fields, id=explicit or "*")  # type: ignore[arg-type]
        if spec.channel != "raw":
            pipe.hincrby(KEYS.depth(), f"{MALLORY}:{lane}", 1)
            pipe.hincrby(KEYS.depth(), MALLORY, 1)
        entry_id = as_str(pipe.execute()[0])
    may_own = spec.payload == "valid" and spec.target in ("mallory_live", "mallory_cancelled")
    return Written(stream, entry_id, spec, req.rid if req else None, seq, may_own, _expected_code(spec))


def _id(entry_id: bytes | str) -> tuple[int, int]:
    ms, _, n = as_str(entry_id).partition("-")
    return int(ms), int(n or 0)


def _reusable(r: redis.Redis, req: Req, seq: int) -> tuple[str, str] | None:
    """A lane of mallory's and the id of the entry that owns (or will own) segment ``seq`` of her
    request ``req``, where an explicit XADD of that id is accepted: an id that is unique in its own
    stream only. None when there is no such entry or lane."""
    owner = r.hget(KEYS.request(req.rid), f"o:{seq}")
    ids = [as_str(owner).rsplit("|", 1)[-1]] if owner else []  # an id, possibly qualified by its lane
    for lane in LANES:
        for entry_id, fields in r.xrange(KEYS.queue(MALLORY, lane)):
            if fields.get(b"r") == req.rid.encode() and peek_segment_address(fields.get(b"p", b"")) == (req.rid, seq):
                ids.append(as_str(entry_id))
    for entry_id in ids:
        for lane in LANES:
            key = KEYS.queue(MALLORY, lane)
            last = r.xinfo_stream(key)["last-generated-id"] if r.exists(key) else b"0-0"
            if _id(last) < _id(entry_id):
                return lane, as_str(entry_id)
    return None


def _forge(stack: Stack, lane: str, r_field: bytes, payload: bytes, chars: bytes) -> str | None:
    """Run the documented enqueue script as a foreign producer would, with a request key of its own
    making (deleted in the same transaction) and field ``r`` of its choice; returns the entry id, or
    None when the script refused the arguments (``BADARGS``: it checks ids, counts and payloads before
    writing) and wrote nothing."""
    fake = KEYS.request(new_request_id(KEYS.shard))
    key_list = KEYS.enqueue_keys(MALLORY, fake)
    args: list[object] = [MALLORY, r_field, "jm_kumo", 1, 0, 60, GROUP, 1, LANES.index(lane) + 1, chars, payload]
    stream = KEYS.queue(MALLORY, lane)
    pipe = stack.r.pipeline(transaction=True)
    pipe.xrevrange(stream, count=1)
    stack.enqueue(keys=key_list, args=args, client=pipe)
    pipe.xrevrange(stream, count=1)
    pipe.delete(fake)
    before, nseg, newest, _ = pipe.execute(raise_on_error=False)
    if isinstance(nseg, redis.ResponseError):
        assert str(nseg).startswith("BADARGS"), f"the script refused with {nseg}"
        assert newest == before, "a refused enqueue wrote an entry"
        return None
    assert nseg == 1
    return as_str(newest[0][0])


# -- checks --------------------------------------------------------------------------------


def _heard_once(r: redis.Redis, req: Req) -> None:
    frames = list(Subscriber(r).frames(req.rid, timeout_s=WAIT_S))  # raises RequestFailed on an error frame
    want = [(s, i) for s in range(req.segments) for i in range(CHUNKS)]
    assert [(f.segment, f.index) for f in frames] == want, f"{req}: every frame of every segment, in order, once"
    assert [f.segment for f in frames if f.last] == list(range(req.segments)), f"{req}: one last frame a segment"
    raw = [decode_frame(f[b"f"]) for _, f in r.xrange(KEYS.audio(req.rid))]
    written = [(f.segment, f.index, f.attempt) for f in raw if isinstance(f, AudioFrame)]
    assert len(written) == len(set(written)), f"{req}: no segment synthesised twice"
    assert not [f for f in raw if isinstance(f, ErrorFrame)], f"{req}: no error frame"
    assert [f for f in raw if isinstance(f, EndFrame)] == [EndFrame(req.segments, "ok")]


def _done(r: redis.Redis, req: Req) -> int:
    return int(r.hget(KEYS.request(req.rid), "done") or 0)


def _quiet(r: redis.Redis) -> bool:
    streams = [KEYS.queue(t, lane) for t in (*POLITE, MALLORY) for lane in LANES]
    return all(r.xlen(s) == 0 for s in streams) and r.zcard(KEYS.leases()) == 0 and r.zcard(KEYS.finishing()) == 0


def _settled(r: redis.Redis) -> list[str]:
    """What is still stuck once the queues are quiet: pending entries, depth and in-flight counters."""
    stuck = []
    for tenant in (*POLITE, MALLORY):
        for lane in LANES:
            key = KEYS.queue(tenant, lane)
            if r.exists(key):
                stuck += [f"{key} {g['name']!r} pending {g['pending']}" for g in r.xinfo_groups(key) if g["pending"]]
    stuck += [f"depth {as_str(k)}={as_str(v)}" for k, v in r.hgetall(KEYS.depth()).items() if int(v) != 0]
    stuck += [
        f"drr {as_str(k)}={as_str(v)}"
        for k, v in r.hgetall(KEYS.drr()).items()
        if (k.endswith(b":f") or k == b"~f") and int(v) != 0
    ]
    return stuck


# -- the test ------------------------------------------------------------------------------


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(scenario=REUSE_ATTACK)
@given(scenario=scenarios())
def test_hostile_entries_are_dead_lettered_and_harm_no_one(stack: Stack, scenario: Scenario) -> None:
    """No shrinking: each example runs against live processes and takes up to seconds; the failing
    example is printed whole."""
    r = stack.r
    newest_dead = r.xrevrange(KEYS.dead(), count=1)
    since = f"({as_str(newest_dead[0][0])}" if newest_dead else "-"

    # requests the hostile entries may name: finished, cancelled, live
    polite_done, mallory_done = _enqueue(stack, "alice", 1), _enqueue(stack, MALLORY, 1)
    _heard_once(r, polite_done)
    list(Subscriber(r).frames(mallory_done.rid, timeout_s=WAIT_S))
    polite_cancelled, mallory_cancelled = _enqueue(stack, "bob", 3), _enqueue(stack, MALLORY, 3)
    polite_was_cancelled = cancel(r, polite_cancelled.rid)
    cancel(r, mallory_cancelled.rid)
    pools = Pools(
        [],
        polite_done,
        polite_cancelled,
        [_enqueue(stack, MALLORY, n) for n in scenario.mallory],
        mallory_done,
        mallory_cancelled,
    )

    written: list[Written] = []
    for i in scenario.order:
        if i < len(scenario.polite):
            spec = scenario.polite[i]
            pools.polite_live.append(_enqueue(stack, spec.tenant, spec.segments, spec.priority))
        else:
            if (entry := _write(stack, scenario.hostile[i - len(scenario.polite)], pools)) is not None:
                written.append(entry)
    # a valid request of mallory's after her entries: activates her whatever the depth counter says
    flush = _enqueue(stack, MALLORY, 1)

    # (1) every polite request is heard exactly once
    for req in pools.polite_live:
        _heard_once(r, req)
    every = [
        *pools.polite_live,
        polite_done,
        polite_cancelled,
        *pools.mallory_live,
        mallory_done,
        mallory_cancelled,
        flush,
    ]

    def detail() -> str:
        alive = {name: proc.is_alive() for name, proc in stack.procs.items()}
        return f"workers alive: {alive}\n{_state(r, every)}"

    for req in every:
        _wait(lambda req=req: _done(r, req) >= req.segments, f"{req} did not end", detail=detail)
    _wait(lambda: _quiet(r), "lane streams, leases or end markers left behind", detail=detail)
    miscounted = {req.rid: (_done(r, req), req.segments) for req in every if _done(r, req) != req.segments}
    assert miscounted == {}, "requests that counted a segment twice: rid -> (done, segments)"
    for req in pools.polite_live:
        assert r.hmget(KEYS.request(req.rid), ["status", "failed"]) == [b"done", b"0"]
    assert r.hget(KEYS.request(polite_cancelled.rid), "status") == (b"cancelled" if polite_was_cancelled else b"done")
    assert r.hget(KEYS.request(flush.rid), "status") == b"done"

    # (2) both workers are alive and serving
    now_ms = time.time() * 1000
    for name, proc in stack.procs.items():
        assert proc.is_alive() and proc.exitcode is None, f"worker {name} died (exit code {proc.exitcode})"
        beat = r.zscore(KEYS.workers(), name)
        assert beat is not None and now_ms - beat < 3000, f"worker {name} stopped heartbeating"

    # (3) every hostile entry is dead-lettered once with the reason its content calls for
    dead = [fields for _, fields in r.xrange(KEYS.dead(), min=since)]
    letters = Counter((as_str(f[b"stream"]), as_str(f[b"id"])) for f in dead)
    reasons = {(as_str(f[b"stream"]), as_str(f[b"id"])): as_str(f[b"reason"]) for f in dead}
    assert not [x for x in reasons.values() if x.startswith("internal_error")], "a worker bug was caught: see reasons"
    polite_streams = {KEYS.queue(t, lane) for t in POLITE for lane in LANES}
    assert not [k for k in letters if k[0] in polite_streams], "a polite tenant's entry was dead-lettered"
    turned_away = {
        peek_segment_address(f.get(b"f:p", b""))
        for f in dead
        if as_str(f[b"reason"]).startswith(("duplicate_segment:", "request_finished:"))
    }
    for w in written:
        key = (w.stream, w.entry_id)
        if w.may_own and letters[key] == 0:
            # the allowed exception: it took its segment, and the real entry of that segment was turned away
            owner = as_str(r.hget(KEYS.request(w.rid or ""), f"o:{w.seq}") or b"")
            assert owner.rsplit("|", 1)[-1] == w.entry_id, f"{w} escaped the dead letters without owning its segment"
            assert (w.rid, w.seq) in turned_away, f"{w} escaped, and no other entry of its segment was turned away"
            continue
        assert letters[key] == 1, f"{w} is dead-lettered {letters[key]} times"
        code, _, why = reasons[key].partition(":")
        assert code and why.strip(), f"{w}: empty reason {reasons[key]!r}"
        if w.code is not None:
            assert code == w.code, f"{w}: {reasons[key]!r}"

    # (4) no key without an expiry but the deployment's own
    assert keys_without_ttl(r) == []
    # (5) nothing stuck: no pending entry, counters back to zero
    assert _settled(r) == []
