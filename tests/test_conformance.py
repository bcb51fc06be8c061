"""The wire protocol's conformance vectors (protocol/vectors/*.json) against the Python implementation.

Every case of every file is run against the real functions here, independently of
bin/make-vectors (which wrote the expected values): segmentation and the producer's
per-segment values, the enqueue script's lanes on a real redis-server, the payload and
frame codecs, the real listening operation (:func:`chorus_client.listen.listen`) driven
as protocol/vectors/README.md specifies it for other languages, placement (the FNV-1a
hash, the home shard, the shard count's parsing), and the choice of a voice per segment
(the voices hash's defaults, each segment's language, voice and ``sr``). A behaviour change fails
here; the last test fails when the files are not what ``bin/make-vectors`` produces now.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis

from broker.policy import TenantPolicy
from broker.producer import Producer
from broker.tenants import Tenants
from chorus_client import protocol as P
from chorus_client.constants import (
    LANES,
    MAX_SHARD_HOPS,
    MAX_SHARDS,
    PLACEMENT_TTL_S,
    SHARD_COUNT_TTL_S,
    EndStatus,
)
from chorus_client.drive import Command, Emit
from chorus_client.enqueue import lane_number, min_segments, prepare, voices_from_hash
from chorus_client.errors import ProtocolError, RequestFailed, TextError, UnknownTenant, UnknownVoice
from chorus_client.keys import Keys, fnv1a32, home_shard
from chorus_client.language import DEFAULT_LANG, LONG_LATIN_WORDS, segment_languages
from chorus_client.listen import StreamState, listen, parse_position, resume
from chorus_client.placement import MAX_REMEMBERED, parse_shard_count
from chorus_client.segment import FIRST_BUDGET, FIRST_MAX_CHARS, MAX_CHARS, presegmented, segment_text, weight

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "protocol" / "vectors"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert doc["version"] == 1
    return doc


SEGMENTATION = _load("segmentation.json")
PAYLOADS = _load("payloads.json")
LISTENING = _load("listening.json")
PLACEMENT = _load("placement.json")
VOICES = _load("voices.json")


def _cases(cases: list[dict[str, Any]]) -> Any:
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return pytest.mark.parametrize("case", cases, ids=names)


# --- segmentation.json -------------------------------------------------------------------


def _segment(given: str | list[str]) -> list[Any]:
    return presegmented(list(given)) if isinstance(given, list) else segment_text(given)


def test_segmentation_parameters() -> None:
    params = SEGMENTATION["parameters"]
    assert (params["first_max_chars"], params["first_budget"], params["max_chars"]) == (
        FIRST_MAX_CHARS,
        FIRST_BUDGET,
        MAX_CHARS,
    )


@_cases(SEGMENTATION["cases"])
def test_segmentation(case: dict[str, Any]) -> None:
    given = case["input"]
    if case["error"] is not None:
        assert case["error"] == "text"
        assert case["segments"] is None and case["lanes"] is None and case["min_segments"] is None
        with pytest.raises(TextError):
            _segment(given)
        return
    segments = _segment(given)
    assert [{"text": s.text, "pause_ms": s.pause_ms} for s in segments] == [
        {"text": row["text"], "pause_ms": row["pause_ms"]} for row in case["segments"]
    ]
    assert segment_languages([s.text for s in segments]) == [row["lang"] for row in case["segments"]]
    for s, row in zip(segments, case["segments"], strict=True):
        assert weight(s.text) * 5 == pytest.approx(row["weight_fifths"], abs=1e-9), s.text
        assert max(1, round(weight(s.text))) == row["c"], s.text
        assert row["c"] == max(1, (row["weight_fifths"] + 2) // 5), "the README's integer formula for c"
    n = len(segments)
    for priority in ("interactive", "batch"):
        assert [LANES[lane_number(priority, i) - 1] for i in range(n)] == case["lanes"][priority]
    assert len(case["lanes"]["interactive_no_rt"]) == n  # checked against enqueue.lua below
    assert min_segments(given) == case["min_segments"]
    assert 0 <= case["min_segments"] <= n, "min_segments is a lower bound"


@_cases([c for c in SEGMENTATION["cases"] if c["error"] is None])
def test_enqueue_writes_the_vector_lanes_and_chars(case: dict[str, Any], r: redis.Redis, keys: Keys) -> None:
    """The producer and enqueue.lua on a real redis-server: each segment's lane stream, ``c`` and payload."""
    Tenants(r).set("nort", TenantPolicy(lanes=("interactive", "batch")))
    producer = Producer(r)
    for tenant, priority, column in (
        ("full", "interactive", "interactive"),
        ("full", "batch", "batch"),
        ("nort", "interactive", "interactive_no_rt"),
    ):
        res = producer.enqueue(case["input"], tenant=tenant, priority=priority)
        got: dict[int, tuple[str, int, str, int, str]] = {}
        for lane in LANES:
            for _id, fields in r.xrange(keys.queue(tenant, lane)):
                job = P.decode_segment(fields[b"p"])
                if job.request_id == res.request_id:
                    got[job.seq] = (lane, int(fields[b"c"]), job.text, job.pause_ms, job.lang)
        want = [
            (lane, row["c"], row["text"], row["pause_ms"], row["lang"])
            for lane, row in zip(case["lanes"][column], case["segments"], strict=True)
        ]
        assert [got.get(i) for i in range(len(want))] == want and len(got) == len(want), column


# --- payloads.json -----------------------------------------------------------------------


def test_constants() -> None:
    c = PAYLOADS["constants"]
    assert c == {
        "protocol_version": P.PROTOCOL_VERSION,
        "max_entry_bytes": P.MAX_ENTRY_BYTES,
        "max_frame_bytes": P.MAX_FRAME_BYTES,
        "max_segment_text_bytes": P.MAX_SEGMENT_TEXT_BYTES,
        "max_request_text_bytes": P.MAX_REQUEST_TEXT_BYTES,
        "max_segments": P.MAX_SEGMENTS,
        "max_pause_ms": P.MAX_PAUSE_MS,
        "lanes": list(LANES),
        "end_statuses": [s.value for s in EndStatus],
    }


def _job(m: dict[str, Any]) -> P.SegmentJob:
    assert m["v"] == 1 and set(m) - {"sr"} == {"v", "req", "seq", "text", "voice", "lang", "speed", "pause_ms", "t"}
    return P.SegmentJob(
        m["req"], m["seq"], m["text"], m["voice"], m["lang"], m["speed"], m["pause_ms"], m["t"], m.get("sr")
    )


def _frame(m: dict[str, Any]) -> P.Frame:
    kind = m["t"]
    if kind == "audio":
        return P.AudioFrame(m["seg"], m["idx"], m["last"], m["sr"], bytes.fromhex(m["pcm"]), m["att"])
    if kind == "header":
        assert (m["format"], m["channels"]) == ("s16le", 1)
        return P.HeaderFrame(m["req"], m["segments"], m["voice"], m["sr"], m["tenant"])
    if kind == "error":
        return P.ErrorFrame(m["code"], m["msg"], m["seg"])
    assert kind == "end"
    return P.EndFrame(m["segments"], m["status"])


def _wire(m: dict[str, Any]) -> dict[str, Any]:
    """A frame map of the vectors with ``pcm`` as bytes, as msgpack decodes it."""
    return {k: bytes.fromhex(v) if k == "pcm" else v for k, v in m.items()}


@_cases(PAYLOADS["segments"])
def test_segment_encoding(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    job = _job(case["payload"])
    assert P.encode_segment(job) == data, "Python's own encoding is byte-exact"
    assert P.decode_segment(data) == job
    assert msgpack.unpackb(data, raw=False) == case["payload"]


@_cases(PAYLOADS["segments_foreign"])
def test_segment_foreign_encoding_decodes(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    assert P.decode_segment(data) == _job(case["payload"])
    assert P.encode_segment(_job(case["payload"])) != data, "a foreign case differs from Python's bytes"


@_cases(PAYLOADS["segments_malformed"])
def test_segment_malformed(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    with pytest.raises(ProtocolError) as caught:
        P.decode_segment(data)
    assert caught.value.field == case["error"]["field"]
    address = P.peek_segment_address(data)
    assert (list(address) if address is not None else None) == case["address"]


@_cases(PAYLOADS["frames"])
def test_frame_encoding(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    frame = _frame(case["frame"])
    assert P.encode_frame(frame) == data, "Python's own encoding is byte-exact"
    assert P.decode_frame(data) == frame
    assert msgpack.unpackb(data, raw=False) == _wire(case["frame"])


@_cases(PAYLOADS["frames_foreign"])
def test_frame_foreign_encoding_decodes(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    assert P.decode_frame(data) == _frame(case["frame"])
    assert P.encode_frame(_frame(case["frame"])) != data


@_cases(PAYLOADS["frames_malformed"])
def test_frame_malformed(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as caught:
        P.decode_frame(bytes.fromhex(case["hex"]))
    assert caught.value.field == case["error"]["field"]


# --- listening.json ----------------------------------------------------------------------


def _entry(entry: dict[str, Any]) -> tuple[bytes, dict[bytes, bytes]]:
    assert not ("frame" in entry and "f_hex" in entry)
    fields: dict[bytes, bytes] = {}
    if "frame" in entry:
        fields[b"f"] = msgpack.packb(_wire(entry["frame"]), use_bin_type=True)
    elif "f_hex" in entry:
        fields[b"f"] = bytes.fromhex(entry["f_hex"])
    return entry["id"].encode(), fields


def _listen(request_id: str, entries: list[dict[str, Any]], resume_from: str | None) -> dict[str, Any]:
    """The listener of README.md: replay up to ``resume_from`` in one feed (as ``Gateway.replay``), then
    the real :func:`chorus_client.listen.listen` with an XREAD that answers one entry per call."""
    raw = [_entry(e) for e in entries]
    state = StreamState(request_id)
    pos = 0
    if resume_from is not None:
        pos = [e["id"] for e in entries].index(parse_position(resume_from)[0]) + 1
        state = resume(request_id, raw[:pos], resume_from)
    op = listen(Keys(), state, url="redis://test", timeout_s=3600.0, check_exists=False)
    played: list[tuple[P.AudioFrame, str]] = []
    result: dict[str, Any] = {"outcome": "end", "error": None}
    reply: Any = None
    reads_after_last = 0
    try:
        while True:
            step = op.send(reply)
            reply = None
            if isinstance(step, Emit):
                played.append(step.value)
                continue
            assert isinstance(step, Command), step
            if step.args[0] == "EXISTS":  # the lost-request check: it exists
                reply = 1
                continue
            assert step.args[0] == "XREAD" and step.args[-1] == state.last_id, step
            if pos < len(raw):
                reply, pos = [[b"audio", raw[pos : pos + 1]]], pos + 1
            elif reads_after_last:  # a second empty read: the listener would wait on
                op.close()
                result["outcome"] = "pending"
                break
            else:
                reads_after_last = 1  # reply None: XREAD BLOCK timed out
    except StopIteration:
        pass
    except RequestFailed as exc:
        result = {"outcome": "error", "error": {"code": exc.code, "segment": exc.segment}}
    except ProtocolError as exc:
        result = {"outcome": "protocol_error", "error": {"field": exc.field}}
    return {
        **result,
        "played": [[f.segment, f.index, f.attempt] for f, _ in played],
        "positions": [position for _, position in played],
        "pcm": b"".join(f.pcm for f, _ in played).hex(),
        "end_status": None if state.end is None else str(state.end.status),
        "next_segment": state.order.segment,
        "last_id": state.last_id,
    }


@_cases(LISTENING["cases"])
def test_listening(case: dict[str, Any]) -> None:
    assert _listen(LISTENING["request_id"], case["entries"], case["resume_from"]) == case["expected"]


# --- placement.json ----------------------------------------------------------------------


def test_placement_constants() -> None:
    assert PLACEMENT["constants"] == {
        "fnv_offset_basis": 2166136261,
        "fnv_prime": 16777619,
        "max_shards": MAX_SHARDS,
        "shard_count_ttl_s": SHARD_COUNT_TTL_S,
        "placement_ttl_s": PLACEMENT_TTL_S,
        "max_shard_hops": MAX_SHARD_HOPS,
        "max_remembered": MAX_REMEMBERED,
    }
    assert fnv1a32(b"") == PLACEMENT["constants"]["fnv_offset_basis"]


@_cases(PLACEMENT["tenants"])
def test_placement_home_shard(case: dict[str, Any]) -> None:
    tenant = case["tenant"]
    assert tenant.encode().hex() == case["utf8_hex"]
    assert fnv1a32(tenant.encode()) == case["fnv1a32"]
    assert set(case["home"]) == {str(n) for n in PLACEMENT["shard_counts"]}
    for count in PLACEMENT["shard_counts"]:
        assert home_shard(tenant, count) == case["home"][str(count)], count
        assert case["home"][str(count)] == f"s{case['fnv1a32'] % count}", "the README's formula"


@_cases(PLACEMENT["tenants_refused"])
def test_placement_refused_tenant(case: dict[str, Any]) -> None:
    assert case["error"] == "tenant"
    for count in PLACEMENT["shard_counts"]:
        with pytest.raises(UnknownTenant):
            home_shard(case["tenant"], count)


@_cases(PLACEMENT["hashes"])
def test_placement_hash(case: dict[str, Any]) -> None:
    data = case["input"].encode()
    assert data.hex() == case["utf8_hex"]
    assert fnv1a32(data) == case["fnv1a32"]


@_cases(PLACEMENT["shard_count_values"])
def test_placement_shard_count(case: dict[str, Any]) -> None:
    raw = case["raw"]
    if case["error"] is not None:
        assert case["count"] is None
        for given in (raw, raw.encode()):
            with pytest.raises(ProtocolError) as exc:
                parse_shard_count(given)
            assert exc.value.field == case["error"]["field"]
        return
    assert parse_shard_count(raw) == case["count"]
    if raw is not None:
        assert parse_shard_count(raw.encode()) == case["count"]  # as redis-py returns it


# --- voices.json -------------------------------------------------------------------------


def test_voices_constants() -> None:
    assert VOICES["constants"] == {"default_lang": DEFAULT_LANG, "long_latin_words": LONG_LATIN_WORDS}


@pytest.mark.parametrize("name", sorted(VOICES["hashes"]))
def test_voices_hash_defaults(name: str) -> None:
    doc = VOICES["hashes"][name]
    table = voices_from_hash(doc["entries"])
    assert sorted(table.voices) == doc["voices"]
    assert dict(table.defaults) == doc["defaults"]
    # as redis-py returns HGETALL: bytes
    raw = {k.encode(): v.encode() for k, v in doc["entries"].items()}
    assert dict(voices_from_hash(raw).defaults) == doc["defaults"]


def test_voices_hash_is_what_workers_publish() -> None:
    """The vectors' v1.3 hash is what a worker serving every catalog voice writes (``voice_info``)."""
    from chorus.testing import NullBackend
    from models.catalog import load_catalog
    from workers.engine import Engine

    catalog = load_catalog()
    engine = Engine(backends={}, frontends={})
    for model_id, spec in catalog.models.items():
        backend = NullBackend(sample_rate=spec.sample_rate)
        engine.swap(model_id, spec.version, backend, [v.name for v in spec.voices])  # type: ignore[arg-type]
    assert engine.voice_info(catalog) == VOICES["hashes"]["workers_v1_3"]["entries"]


@_cases(VOICES["cases"])
def test_voices_choice(case: dict[str, Any]) -> None:
    table = voices_from_hash(VOICES["hashes"][case["hash"]]["entries"])
    spec = table if case["voice"] is None else table.named(case["voice"])
    given = case["input"]
    if case["error"] is not None:
        with pytest.raises(UnknownVoice) as caught:
            prepare(given, tenant="acme", keys=Keys(), voice=spec, request_id=VOICES["request_id"])
        assert case["error"] == {"kind": "voice", "lang": caught.value.lang}
        return
    req = prepare(given, tenant="acme", keys=Keys(), voice=spec, request_id=VOICES["request_id"])
    jobs = [P.decode_segment(req.args[i]) for i in range(10, len(req.args), 3)]
    assert [{"text": j.text, "lang": j.lang, "voice": j.voice, "sr": j.sample_rate} for j in jobs] == case["segments"]
    header = P.decode_frame(req.header)
    assert isinstance(header, P.HeaderFrame)
    assert {"voice": header.voice, "sr": header.sample_rate} == case["header"]
    assert req.args[2] == header.voice and req.sample_rate == header.sample_rate
    assert req.voices == tuple(row["voice"] for row in case["segments"])


# --- the files are current ---------------------------------------------------------------


def test_vectors_are_current() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "make-vectors"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
