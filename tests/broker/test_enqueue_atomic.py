"""enqueue.lua is all or nothing: whichever step refuses a request, Redis is left as it was, byte for byte.

Redis does not undo a script's writes when the script fails, so the script checks everything
(arguments, payloads, the policy, lanes, queue caps, the id, key types, the counters and scheduler
values it reads) before its first write. Each case below builds a realistic shard (policies, the
default policy, queued requests, a claim and a completion that set the scheduler state), injects
one failure, snapshots every key (type, DUMP bytes, encoding, expiry), runs the script and proves
the refusal wrote nothing. A last test proves that a valid enqueue after all those refusals is
counted once and that its retry is idempotent; a property test changes arguments at random.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.commands.core import Script

from broker.claim import Claimer
from broker.policy import DefaultPolicy, TenantPolicy
from broker.producer import Producer, prepare
from broker.scripts import ENQUEUE, script_source
from broker.tenants import Tenants
from chorus_client.keys import LANES, Keys
from chorus_client.protocol import SegmentJob, decode_segment, encode_segment
from models.catalog import load_catalog

KEYS = Keys()
CATALOG = load_catalog()
ACME_RID = "s0." + "A" * 22
"""A request of acme's that is queued before every case."""
NEW_RID = "s0." + "N" * 22
"""The id every refused request uses: a valid enqueue of it must work afterwards."""
OTHER_RID = "s0." + "O" * 22
TEXTS = ("一。", "二。")

Snapshot = dict[bytes, tuple[bytes, object, bytes, int]]


def snapshot(r: redis.Redis) -> Snapshot:
    """Every key: its type, its value, its encoding and its expiry in ms (-1: none).

    The value is the key's DUMP bytes, except for a hash or set stored as a hash table: DUMP writes
    those in the table's iteration order, which a mere read may change (it moves an incremental
    rehash on), so their value is their sorted content.
    """
    out: Snapshot = {}
    for key in r.scan_iter(count=1000):
        kind, encoding = r.type(key), r.object("encoding", key)
        value: object = r.dump(key)
        if encoding == b"hashtable" and kind == b"hash":
            value = sorted(r.hgetall(key).items())
        elif encoding == b"hashtable" and kind == b"set":
            value = sorted(r.smembers(key))
        out[key] = (kind, value, encoding, r.pttl(key))
    return out


def assert_same(before: Snapshot, after: Snapshot) -> None:
    assert sorted(after) == sorted(before), "keys were created or deleted"
    for key, (kind, value, encoding, pttl) in before.items():
        kind_after, value_after, encoding_after, pttl_after = after[key]
        assert (kind_after, value_after, encoding_after) == (kind, value, encoding), f"{key!r} changed"
        assert (pttl_after < 0) == (pttl < 0), f"{key!r} gained or lost its expiry"
        assert pttl_after <= pttl and pttl - pttl_after < 10_000, f"{key!r}: expiry moved"


def backup(r: redis.Redis) -> list[tuple[bytes, bytes, int]]:
    return [(key, r.dump(key), r.pttl(key)) for key in r.scan_iter(count=1000)]


def restore(r: redis.Redis, dumps: list[tuple[bytes, bytes, int]]) -> None:
    r.flushall()
    for key, dump, pttl in dumps:
        r.restore(key, max(pttl, 0), dump)


@pytest.fixture()
def script(r: redis.Redis) -> Script:
    return r.register_script(script_source(ENQUEUE))


def populate(r: redis.Redis) -> None:
    """A shard in use: policies and the default policy, queued work of several tenants, a segment in
    flight and one completed (in-flight counts, deficits, measured rate and quantum), and an idle
    tenant with a policy and a debt but no work (an enqueue of its activates it)."""
    tenants = Tenants(r, KEYS)
    tenants.set_default(DefaultPolicy(policy=TenantPolicy(max_queued=50)))
    tenants.set("acme", TenantPolicy(weight=2, max_queued=20))
    tenants.set("slow", TenantPolicy(max_queued=4, lanes=("interactive", "batch")))
    tenants.set("nobatch", TenantPolicy(lanes=("rt", "interactive")))
    tenants.set("idle", TenantPolicy(weight=3, max_queued=30))
    producer = Producer(r, keys=KEYS, catalog=CATALOG)
    producer.enqueue(["一。", "二。", "三。"], tenant="acme", request_id=ACME_RID)
    producer.enqueue("你好。", tenant="acme", priority="batch")
    producer.enqueue(["一。", "二。"], tenant="slow")
    producer.enqueue("你好。", tenant="walkin")  # no policy of its own: the default applies
    claimer = Claimer(r, KEYS)
    first, _ = claimer.claim("w1", 2)
    claimer.complete(first, first.request_id, ok=True, measured_us=90_000, chars=3)
    r.hset(KEYS.drr(), "idle:d", -5000)
    assert {b"~q", b"~rate", b"acme:f", b"acme:d", b"idle:d"} <= set(r.hkeys(KEYS.drr()))


@pytest.fixture()
def world(r: redis.Redis) -> redis.Redis:
    populate(r)
    return r


# -- the cases -----------------------------------------------------------------------------


def _nothing(r: redis.Redis) -> None:
    pass


def _keep(args: list[Any]) -> None:
    pass


@dataclass(frozen=True)
class Case:
    name: str
    error: str
    """The exact error reply."""
    tenant: str = "idle"
    texts: tuple[str, ...] = TEXTS
    priority: str = "interactive"
    rid: str = NEW_RID
    corrupt: Callable[[redis.Redis], None] = field(default=_nothing, repr=False)
    """Injects the failure into Redis (before the snapshot)."""
    mutate: Callable[[list[Any]], None] = field(default=_keep, repr=False)
    """Injects the failure into the arguments."""


def job(rid: str, seq: int) -> bytes:
    return encode_segment(SegmentJob(rid, seq, "一。", "jm_kumo", "zh", 1.0, 0, 1))


def hset(name: Callable[[], str], key: str, value: str) -> Callable[[redis.Redis], None]:
    return lambda r: r.hset(name(), key, value)  # type: ignore[return-value]


def retype(name: str, make: Callable[[redis.Redis, str], object]) -> Callable[[redis.Redis], None]:
    def go(r: redis.Redis) -> None:
        r.delete(name)
        make(r, name)

    return go


def arg(index: int, value: object) -> Callable[[list[Any]], None]:
    def go(args: list[Any]) -> None:
        args[index] = value

    return go


def seg(i: int, part: int, value: object | Callable[[list[Any]], object]) -> Callable[[list[Any]], None]:
    """Set part ``part`` (0 lane, 1 weighted characters, 2 payload) of segment ``i``."""

    def go(args: list[Any]) -> None:
        args[8 + 3 * i + part] = value(args) if callable(value) else value

    return go


def swap_payloads(args: list[Any]) -> None:
    args[10], args[13] = args[13], args[10]


def chars_error(seq: int) -> str:
    return f"BADARGS segment {seq}: weighted characters must be an integer within 0..100000"


def depth_error(name: str) -> str:
    return f"BADSTATE chorus:{{s0}}:depth field {name} must be an integer of at most 18 digits"


LANE_ERROR = "BADARGS lane number must be 1..3"
COUNT_ERROR = "BADARGS segment count does not match arguments"
POLICY = '{"weight":1,"max_queued":10,"max_inflight":0,"lanes":["rt","interactive","batch"]}'

CASES = [
    # policies: the tenant's own, the default (field *); each used to fail with a Lua error, some after writing
    Case("own policy not JSON", "BADPOLICY idle is not JSON", corrupt=hset(KEYS.tenants, "idle", "{not json")),
    Case(
        "default policy not JSON",
        "BADPOLICY * is not JSON",
        tenant="stranger",
        corrupt=hset(KEYS.tenants, "*", "{not json"),
    ),
    Case("own policy null", "BADPOLICY idle is not a JSON object", corrupt=hset(KEYS.tenants, "idle", "null")),
    Case(
        "own policy without max_inflight (read only at activation, after the writes)",
        "BADPOLICY idle max_inflight must be an integer >= 0",
        corrupt=hset(KEYS.tenants, "idle", '{"weight":1,"max_queued":10,"lanes":["rt","interactive","batch"]}'),
    ),
    Case(
        "own policy weight not a number (read only at activation, after the writes)",
        "BADPOLICY idle weight must be an integer >= 1",
        corrupt=hset(KEYS.tenants, "idle", POLICY.replace('"weight":1', '"weight":"heavy"')),
    ),
    Case(
        "own policy max_queued negative",
        "BADPOLICY idle max_queued must be an integer >= 0",
        corrupt=hset(KEYS.tenants, "idle", POLICY.replace('"max_queued":10', '"max_queued":-1')),
    ),
    Case(
        "own policy with an unknown lane",
        "BADPOLICY idle lanes must name lanes of rt,interactive,batch",
        corrupt=hset(KEYS.tenants, "idle", POLICY.replace('"batch"', '"fast"')),
    ),
    Case(
        "default policy without lanes",
        "BADPOLICY * lanes must be a non-empty list",
        tenant="stranger",
        corrupt=hset(KEYS.tenants, "*", '{"reject":false,"weight":1,"max_queued":0,"max_inflight":0}'),
    ),
    Case(
        "default policy reject not a boolean",
        "BADPOLICY * reject must be true or false",
        tenant="stranger",
        corrupt=hset(KEYS.tenants, "*", POLICY.replace("{", '{"reject":"yes",')),
    ),
    # scheduler state read when the tenant is activated (in flight, deficit, quantum)
    Case("quantum not a number", "BADSTATE chorus:{s0}:drr field ~q must be a finite number",
         corrupt=hset(KEYS.drr, "~q", "abc")),
    Case("quantum NaN", "BADSTATE chorus:{s0}:drr field ~q must be a finite number",
         corrupt=hset(KEYS.drr, "~q", "nan")),
    Case("quantum negative", "BADSTATE chorus:{s0}:drr field ~q must be > 0", corrupt=hset(KEYS.drr, "~q", "-1")),
    Case("in flight not a number", "BADSTATE chorus:{s0}:drr field idle:f must be a finite number",
         corrupt=hset(KEYS.drr, "idle:f", "many")),
    Case("deficit infinite", "BADSTATE chorus:{s0}:drr field idle:d must be a finite number",
         corrupt=hset(KEYS.drr, "idle:d", "inf")),
    # counters phase 2 increments (the old script compared with 0 and failed at HINCRBY, after the XADDs)
    Case("depth total not an integer", depth_error("idle"), corrupt=hset(KEYS.depth, "idle", "lots")),
    Case("depth of an active tenant not an integer", depth_error("acme"),
         tenant="acme", corrupt=hset(KEYS.depth, "acme", "1.5")),
    Case("depth total at the int64 limit (HINCRBY would overflow)", depth_error("idle"),
         corrupt=hset(KEYS.depth, "idle", str(2**63 - 1))),
    Case("depth of a lane not an integer", depth_error("idle:interactive"),
         corrupt=hset(KEYS.depth, "idle:interactive", "x")),
    # keys of the wrong type
    Case("lane stream is a string", "BADSTATE chorus:{s0}:q:idle:interactive is a string, not a stream",
         corrupt=retype(KEYS.queue("idle", "interactive"), lambda r, k: r.set(k, "x"))),
    Case("wake list is a hash", "BADSTATE chorus:{s0}:wake is a hash, not a list",
         corrupt=retype(KEYS.wake(), lambda r, k: r.hset(k, "x", "1"))),
    Case("drr is a string", "BADSTATE chorus:{s0}:drr is a string, not a hash",
         corrupt=retype(KEYS.drr(), lambda r, k: r.set(k, "x"))),
    Case("active set is a list", "BADSTATE chorus:{s0}:active:set is a list, not a set",
         corrupt=retype(KEYS.active_set(), lambda r, k: r.rpush(k, "acme"))),
    Case("fresh list is a set", "BADSTATE chorus:{s0}:active:fresh is a set, not a list",
         corrupt=retype(KEYS.fresh(), lambda r, k: r.sadd(k, "walkin"))),
    # policy refusals
    Case("queue full", "QUEUEFULL 4 2 3", tenant="slow", texts=("一。", "二。", "三。")),
    Case("request too large", "TOOLARGE 4 5", tenant="slow", texts=("一。", "二。", "三。", "四。", "五。")),
    Case("lane not allowed", "LANE batch rt,interactive", tenant="nobatch", priority="batch"),
    Case(
        "unknown tenant, rejecting default",
        "NOTENANT stranger",
        tenant="stranger",
        corrupt=lambda r: Tenants(r, KEYS).set_default(DefaultPolicy(reject=True)),  # type: ignore[arg-type,return-value]
    ),
    Case("duplicate request id", f"DUPLICATE request id {ACME_RID}", tenant="acme", rid=ACME_RID),
    # arguments
    Case("count above the triples", COUNT_ERROR, mutate=arg(7, 3)),
    Case("count below the triples", COUNT_ERROR, mutate=arg(7, 1)),
    Case("count zero", COUNT_ERROR, mutate=lambda a: a.__setitem__(slice(7, None), [0])),
    Case("count not a number", COUNT_ERROR, mutate=arg(7, "two")),
    Case("a triple cut short", COUNT_ERROR, mutate=lambda a: a.pop()),
    Case("lane 0", LANE_ERROR, mutate=seg(1, 0, 0)),
    Case("lane 4", LANE_ERROR, mutate=seg(0, 0, 4)),
    Case("lane a name", LANE_ERROR, mutate=seg(0, 0, "rt")),
    Case("lane fractional", LANE_ERROR, mutate=seg(1, 0, "1.5")),
    Case("chars not a number", chars_error(0), mutate=seg(0, 1, "many")),
    Case("chars negative", chars_error(1), mutate=seg(1, 1, "-3")),
    Case("chars fractional", chars_error(0), mutate=seg(0, 1, "2.5")),
    Case("chars hexadecimal", chars_error(0), mutate=seg(0, 1, "0x10")),
    Case("chars beyond the cap", chars_error(1), mutate=seg(1, 1, "100001")),
    Case("chars empty", chars_error(0), mutate=seg(0, 1, "")),
    Case("payload empty", "BADARGS segment 1: no payload", mutate=seg(1, 2, b"")),
    Case("payload over the entry limit", "BADARGS segment 1: payload over 8192 bytes",
         mutate=seg(1, 2, lambda a: a[13] + b"\x00" * 8192)),
    Case("payload not msgpack", "BADARGS segment 1: payload is not one msgpack map", mutate=seg(1, 2, b"\xc1\xff")),
    Case("payload truncated", "BADARGS segment 0: payload is not one msgpack map",
         mutate=seg(0, 2, lambda a: a[10][:7])),
    Case("payload with trailing bytes", "BADARGS segment 0: payload is not one msgpack map",
         mutate=seg(0, 2, lambda a: a[10] + b"\x00")),
    Case("payload a string", "BADARGS segment 0: payload is not one msgpack map",
         mutate=seg(0, 2, msgpack.packb("hello"))),
    Case("payload nested thousands deep", "BADARGS segment 0: payload is not one msgpack map",
         mutate=seg(0, 2, b"\x91" * 8000 + b"\xc0")),
    Case("payload of another request", "BADARGS segment 1: payload req is not the request id",
         mutate=seg(1, 2, job(OTHER_RID, 1))),
    Case("payload an array", "BADARGS segment 0: payload req is not the request id",
         mutate=seg(0, 2, msgpack.packb([1, 2, 3]))),
    Case("payload without seq", "BADARGS segment 0: payload seq must be 0",
         mutate=seg(0, 2, msgpack.packb({"v": 1, "req": NEW_RID}))),
    Case("payload seqs out of order", "BADARGS segment 0: payload seq must be 0", mutate=swap_payloads),
    Case("payload seq >= the segment count", "BADARGS segment 1: payload seq must be 1",
         mutate=seg(1, 2, job(NEW_RID, 2))),
    Case("payload seq twice", "BADARGS segment 1: payload seq must be 1", mutate=seg(1, 2, job(NEW_RID, 0))),
    Case("payload seq a string", "BADARGS segment 0: payload seq must be 0",
         mutate=seg(0, 2, msgpack.packb({"v": 1, "req": NEW_RID, "seq": "0"}))),
    Case("tenant name outside the grammar", "BADARGS tenant name must match ^[A-Za-z0-9_.-]{1,64}$",
         mutate=arg(0, "a:b")),
    Case("tenant name too long", "BADARGS tenant name must match ^[A-Za-z0-9_.-]{1,64}$", mutate=arg(0, "t" * 65)),
    Case("request id outside the grammar", r"BADARGS request id must match ^[a-z0-9]{1,8}\.[A-Za-z0-9_-]{22}$",
         mutate=arg(1, "s0.short")),
    Case("request id with a newline", r"BADARGS request id must match ^[a-z0-9]{1,8}\.[A-Za-z0-9_-]{22}$",
         mutate=arg(1, NEW_RID + "\n")),
    Case("voice empty", "BADARGS voice must be 1..64 bytes", mutate=arg(2, "")),
    Case("sent ms not a number", "BADARGS sent ms must be a number >= 0", mutate=arg(3, "yesterday")),
    Case("deadline negative", "BADARGS deadline ms must be an integer >= 0 (0 = none)", mutate=arg(4, -1)),
    Case("deadline infinite", "BADARGS deadline ms must be an integer >= 0 (0 = none)", mutate=arg(4, "inf")),
    Case("ttl zero (the request hash would vanish at once)", "BADARGS metadata ttl must be an integer >= 1",
         mutate=arg(5, 0)),
    Case("ttl fractional (EXPIRE failed after the HSET)", "BADARGS metadata ttl must be an integer >= 1",
         mutate=arg(5, "1.5")),
    Case("consumer group empty", "BADARGS consumer group must not be empty", mutate=arg(6, "")),
]  # fmt: skip


def build(case: Case) -> tuple[list[str], list[Any]]:
    """The request's KEYS and ARGV as the producer builds them, with the case's argument failure."""
    req = prepare(list(case.texts), tenant=case.tenant, keys=KEYS, catalog=CATALOG, priority=case.priority,
                  request_id=case.rid)  # fmt: skip
    args = list(req.args)
    case.mutate(args)
    return req.keys, args


def refused(r: redis.Redis, script: Script, case: Case) -> None:
    """Inject the case's failure, run it, check the error reply and that nothing changed."""
    case.corrupt(r)
    key_list, args = build(case)
    before = snapshot(r)
    with pytest.raises(redis.ResponseError) as err:
        script(keys=key_list, args=args)
    assert str(err.value) == case.error, case.name
    assert_same(before, snapshot(r))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_refused_enqueue_writes_nothing(world: redis.Redis, script: Script, case: Case) -> None:
    refused(world, script, case)


def test_a_valid_enqueue_after_every_refusal_is_counted_once_and_a_retry_is_idempotent(
    world: redis.Redis, script: Script
) -> None:
    r = world
    clean, saved = snapshot(r), backup(r)
    for case in CASES:
        refused(r, script, case)
        restore(r, saved)  # undo the injected failure
    assert_same(clean, snapshot(r))

    req = prepare(["一。", "二。", "三。"], tenant="idle", keys=KEYS, catalog=CATALOG, request_id=NEW_RID)
    wake = r.llen(KEYS.wake())
    quantum = float(r.hget(KEYS.drr(), "~q") or 0)
    assert script(keys=req.keys, args=req.args) == 3
    meta = r.hgetall(KEYS.request(NEW_RID))
    assert (meta[b"tenant"], meta[b"segments"], meta[b"status"], meta[b"done"]) == (b"idle", b"3", b"queued", b"0")
    assert 0 < r.ttl(KEYS.request(NEW_RID)) <= 24 * 3600
    depth = r.hgetall(KEYS.depth())
    assert (depth[b"idle"], depth[b"idle:rt"], depth[b"idle:interactive"]) == (b"3", b"1", b"2")
    assert b"idle:batch" not in depth
    entries = [(lane, f) for lane in LANES for _, f in r.xrange(KEYS.queue("idle", lane))]
    assert [(lane, decode_segment(f[b"p"]).seq) for lane, f in entries] == [
        ("rt", 0),
        ("interactive", 1),
        ("interactive", 2),
    ]
    assert all(f[b"r"] == NEW_RID.encode() for _, f in entries)
    assert r.sismember(KEYS.active_set(), "idle")
    assert r.lrange(KEYS.fresh(), 0, -1).count(b"idle") == 1 and b"idle" not in r.lrange(KEYS.active(), 0, -1)
    # activation as before: the debt is kept, one quantum x weight 3 added
    assert float(r.hget(KEYS.drr(), "idle:d") or 0) == pytest.approx(-5000 + 3 * quantum)
    assert r.llen(KEYS.wake()) == min(wake + 3, 64)

    done = snapshot(r)
    assert script(keys=req.keys, args=req.args) == 3, "a retry answers as the first call did"
    assert_same(done, snapshot(r))
    other = prepare(["一。"], tenant="idle", keys=KEYS, catalog=CATALOG, request_id=NEW_RID)
    with pytest.raises(redis.ResponseError, match=f"^{re.escape(f'DUPLICATE request id {NEW_RID}')}$"):
        script(keys=other.keys, args=other.args)
    assert_same(done, snapshot(r))


def test_state_enqueue_does_not_read_does_not_refuse_it(world: redis.Redis, script: Script) -> None:
    """enqueue reads no ~rate, and the drr fields of a tenant already in the active set not at all."""
    r = world
    r.hset(KEYS.drr(), mapping={"~rate": "abc", "acme:d": "nan", "acme:f": "x"})
    req = prepare(["一。"], tenant="acme", keys=KEYS, catalog=CATALOG)
    assert script(keys=req.keys, args=req.args) == 1


def test_the_built_in_default_policy_accepts_unknown_tenants(r: redis.Redis, script: Script) -> None:
    """Without a ``*`` field the built-in default applies: it accepts every tenant (``reject`` false)."""
    assert r.hget(KEYS.tenants(), "*") is None
    res = Producer(r, keys=KEYS, catalog=CATALOG).enqueue("你好。", tenant="stranger")
    assert r.hget(KEYS.request(res.request_id), "tenant") == b"stranger"
    Tenants(r, KEYS).set("acme", TenantPolicy())  # other tenants configured, still no * field
    req = prepare(["一。"], tenant="walkin", keys=KEYS, catalog=CATALOG)
    assert script(keys=req.keys, args=req.args) == 1


def test_a_raw_payload_whose_seq_is_beyond_the_segments_is_refused_at_enqueue(r: redis.Redis, script: Script) -> None:
    """A foreign producer calling the script directly: one segment whose payload says seq 1."""
    args: list[Any] = ["mallory", NEW_RID, "jm_kumo", 1, 0, 60, "workers", 1, 2, 2, job(NEW_RID, 1)]
    with pytest.raises(redis.ResponseError, match=r"^BADARGS segment 0: payload seq must be 0$"):
        script(keys=KEYS.enqueue_keys("mallory", KEYS.request(NEW_RID)), args=args)
    assert r.dbsize() == 0
    args[-1] = job(NEW_RID, 0)
    assert script(keys=KEYS.enqueue_keys("mallory", KEYS.request(NEW_RID)), args=args) == 1


NASTY: tuple[object, ...] = (
    "", "0", "-1", "1.5", "4", "nan", "inf", "1e400", "0x10", " 1", "a:b", "s0." + "Z" * 22,
    b"\xc1", b"\x90", msgpack.packb({"req": NEW_RID, "seq": 0}), job(NEW_RID, 0), job(NEW_RID, 1), job(OTHER_RID, 1),
)  # fmt: skip


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.lists(
        st.tuples(st.integers(0, 13), st.one_of(st.sampled_from(NASTY), st.binary(max_size=12))),
        min_size=1,
        max_size=3,
    )
)
def test_any_argument_change_is_all_or_nothing(
    world: redis.Redis, script: Script, changes: list[tuple[int, object]]
) -> None:
    """Arguments changed at random: the script refuses and writes nothing, or enqueues the whole request."""
    r = world
    clean, saved = snapshot(r), backup(r)
    try:
        req = prepare(list(TEXTS), tenant="idle", keys=KEYS, catalog=CATALOG, request_id=NEW_RID)
        args = list(req.args)
        for index, value in changes:
            args[index] = value
        try:
            n = script(keys=req.keys, args=args)
        except redis.ResponseError:
            assert_same(clean, snapshot(r))
            return
        # some changes leave a valid request (another voice, a deadline, another valid tenant name)
        tenant = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        assert n == 2
        assert r.hmget(KEYS.request(NEW_RID), ["tenant", "segments"]) == [tenant.encode(), b"2"]
        assert r.hget(KEYS.depth(), tenant) == b"2"
        assert sum(r.xlen(KEYS.queue("idle", lane)) for lane in LANES) == 2
    finally:
        restore(r, saved)
