"""One tenant cannot take the gateway from the others: limits, caps, validation and Origin, end to end.

A real gateway process (``python -m chorus gateway``) runs with small limits (3
streams per tenant, 5 in all, 4 calls per tenant), ``--cors-origin`` and a
metrics token, over real Redis and two real worker processes on a paced tone
backend (10 frames of 100 ms per segment, 50 ms apart, so streams stay open).
Every refusal is checked for its status, its OpenAI error body
(``{"error": {"message", "type", "code"}}``) and, where retryable, its
``Retry-After``. Every HTTP status and WebSocket close code seen is recorded, and
the last test asserts that none was a server error other than the deliberate
``503 gateway_busy``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from broker.policy import TenantPolicy
from broker.tenants import Tenants
from chorus.launch import free_port, start_gateway
from chorus.testing import run_paced_worker
from chorus_client.keys import Keys
from gateway.auth import ApiKeys
from gateway.encode import supported_rates

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STREAMS_PER_TENANT, STREAMS = 3, 5
CALLS_PER_TENANT, CALLS = 4, 16
ORIGIN = "https://app.example"
EVIL = "https://evil.example"
METRICS_TOKEN = "isolation-metrics-token"
MIB = 1024 * 1024
CHUNKS, CHUNK_S = 10, 0.05  # per segment: 10 frames of 100 ms, 50 ms apart
FRAME_BYTES = 2400 * 2  # 100 ms of PCM16 at 24 kHz
TWO = "你好，世界！今天天气很好。"  # two segments
LONG = "，".join(["今天天气很好我们一起去公园散步吧" * 3] * 40) + "。"  # 22 segments: streams outlast a test

SEEN: list[tuple[int, str, str | None]] = []
"""(status, "METHOD /path", error code of a 5xx) of every HTTP response of this module."""
WS_CLOSES: list[int] = []
"""Close codes of every WebSocket this module saw closed by the server."""


def _record(resp: httpx.Response) -> None:
    code = None
    if resp.status_code >= 500:
        resp.read()
        try:
            code = str(resp.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            code = None
    SEEN.append((resp.status_code, f"{resp.request.method} {resp.request.url.path}", code))


@dataclass
class Gw:
    base: str
    r: redis.Redis
    http: httpx.Client
    a: str
    b: str

    def ws(self, key: str) -> str:
        return self.base.replace("http://", "ws://") + f"/v1/ws?api_key={key}"

    def key(self, tenant: str) -> tuple[str, str]:
        """A new API key of ``tenant``: (key, key id)."""
        key, record = ApiKeys(self.r).add(tenant, "isolation")
        return key, record.id


@pytest.fixture(scope="module")
def gw(redis_server: object) -> Iterator[Gw]:
    url = redis_server.url  # type: ignore[attr-defined]
    r = redis.Redis.from_url(url)
    r.flushall()
    ctx = mp.get_context("spawn")
    workers = [
        ctx.Process(target=run_paced_worker, args=(url, f"iso{i}", CHUNKS, CHUNK_S, 2.0), daemon=True) for i in range(2)
    ]
    for w in workers:
        w.start()
    env = {"CHORUS_CORS_ORIGINS": ""}  # only --cors-origin below
    env.update(
        {
            "CHORUS_METRICS_TOKEN": METRICS_TOKEN,
            "CHORUS_GATEWAY_MAX_STREAMS_PER_TENANT": str(STREAMS_PER_TENANT),
            "CHORUS_GATEWAY_MAX_STREAMS": str(STREAMS),
            "CHORUS_GATEWAY_MAX_CALLS_PER_TENANT": str(CALLS_PER_TENANT),
            "CHORUS_GATEWAY_MAX_CALLS": str(CALLS),
        }
    )
    gateway = start_gateway(url, "--cors-origin", ORIGIN, env=env, workers=2, cwd=ROOT)
    base = gateway.base
    http = httpx.Client(timeout=15, event_hooks={"response": [_record]})
    try:
        api = ApiKeys(r)
        key_a, _ = api.add("alice", "isolation")
        key_b, _ = api.add("bob", "isolation")
        yield Gw(base, r, http, key_a, key_b)
    finally:
        http.close()
        gateway.stop()
        for w in workers:
            w.kill()
            w.join(10)
        r.close()


# -- helpers -----------------------------------------------------------------------------


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _error(resp: httpx.Response, status: int, code: str) -> str:
    """Assert an OpenAI-shaped error of ``status`` and ``code``; its message."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["type"] == ("invalid_request_error" if status < 500 else "server_error"), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return str(body["error"]["message"])


def _retry_after(resp: httpx.Response) -> None:
    assert int(resp.headers["Retry-After"]) >= 1, resp.headers


def _enqueue(gw: Gw, key: str, text: str) -> str:
    resp = gw.http.post(f"{gw.base}/v1/requests", json={"input": text, "voice": "jm_kumo"}, headers=_auth(key))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _cancel(gw: Gw, key: str, rid: str) -> None:
    assert gw.http.delete(f"{gw.base}/v1/requests/{rid}", headers=_auth(key)).status_code == 200


def _events_url(gw: Gw, rid: str) -> str:
    return f"{gw.base}/v1/requests/{rid}/events"


def _probe(gw: Gw, url: str, headers: dict[str, str]) -> httpx.Response:
    """GET a stream: an error's body is read, a 200 is closed unread (a wrongly admitted stream never blocks)."""
    with gw.http.stream("GET", url, headers=headers) as resp:
        if resp.status_code != 200:
            resp.read()
    return resp


def _metric(gw: Gw, name: str) -> float | None:
    text = gw.http.get(f"{gw.base}/metrics", headers=_auth(METRICS_TOKEN)).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_slots(gw: Gw, kind: str, value: float, timeout: float = 5.0) -> bool:
    """Wait until the gateway holds ``value`` slots of ``kind`` (streams / calls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _metric(gw, f'chorus_gateway_slots_in_use{{kind="{kind}"}}') == value:
            return True
        time.sleep(0.05)
    return False


def _close_code(ws: ClientConnection, timeout: float = 3.0) -> int:
    """Read (and drop) messages until the server closes the socket; its close code (recorded)."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
    WS_CLOSES.append(code)
    return code


def _ws_connect(gw: Gw, key: str, origin: str | None = None) -> ClientConnection:
    return connect(gw.ws(key), origin=Origin(origin) if origin else None, proxy=None, open_timeout=5)


# -- 1. stream slots -----------------------------------------------------------------------


def test_a_tenant_at_its_stream_limit_does_not_starve_others(gw: Gw) -> None:
    _wait_slots(gw, "streams", 0)  # earlier tests' streams are gone
    rid_a, rid_b = _enqueue(gw, gw.a, LONG), _enqueue(gw, gw.b, LONG)
    try:
        with ExitStack() as held:
            for _ in range(STREAMS_PER_TENANT):
                resp = held.enter_context(gw.http.stream("GET", _events_url(gw, rid_a), headers=_auth(gw.a)))
                assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            over = _probe(gw, _events_url(gw, rid_a), _auth(gw.a))
            assert f"limit {STREAMS_PER_TENANT}" in _error(over, 429, "too_many_streams")
            _retry_after(over)

            models = gw.http.get(f"{gw.base}/v1/models", headers=_auth(gw.b))
            assert models.status_code == 200 and "tts-1" in {m["id"] for m in models.json()["data"]}
            _cancel(gw, gw.b, _enqueue(gw, gw.b, TWO))  # B enqueues: 202
            for _ in range(STREAMS - STREAMS_PER_TENANT):  # B's streams fill the gateway's total
                resp = held.enter_context(gw.http.stream("GET", _events_url(gw, rid_b), headers=_auth(gw.b)))
                assert resp.status_code == 200
            busy = _probe(gw, _events_url(gw, rid_b), _auth(gw.b))
            assert f"limit of {STREAMS}" in _error(busy, 503, "gateway_busy")
            _retry_after(busy)
            assert _metric(gw, 'chorus_gateway_slots_in_use{kind="streams"}') == STREAMS

        assert _wait_slots(gw, "streams", 0), "closing the streams gives their slots back"
        with ExitStack() as held:
            for _ in range(STREAMS_PER_TENANT):
                resp = held.enter_context(gw.http.stream("GET", _events_url(gw, rid_a), headers=_auth(gw.a)))
                assert resp.status_code == 200
    finally:
        _cancel(gw, gw.a, rid_a)
        _cancel(gw, gw.b, rid_b)


def test_slow_uploads_hold_at_most_the_tenants_call_share(gw: Gw) -> None:
    release = threading.Event()
    results: list[int | BaseException] = []

    def slow_body() -> Iterator[bytes]:
        yield b'{"input": "'
        release.wait(10)
        yield '你好"}'.encode()

    def upload() -> None:
        try:
            results.append(gw.http.post(f"{gw.base}/v1/requests", content=slow_body(), headers=_auth(gw.a)).status_code)
        except BaseException as exc:  # reported by the assertion below, not lost in the thread
            results.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(CALLS_PER_TENANT)]
    for t in threads:
        t.start()
    try:
        _wait_slots(gw, "calls", CALLS_PER_TENANT)  # each unfinished upload holds a call slot
        over = gw.http.get(f"{gw.base}/v1/models", headers=_auth(gw.a))
        assert f"limit {CALLS_PER_TENANT}" in _error(over, 429, "too_many_calls")
        _retry_after(over)
        other = gw.http.get(f"{gw.base}/v1/models", headers=_auth(gw.b))
        assert other.status_code == 200 and other.json()["object"] == "list"
    finally:
        release.set()
        for t in threads:
            t.join(15)
    assert results == [202] * CALLS_PER_TENANT
    assert _wait_slots(gw, "calls", 0)


def test_speech_refused_at_the_stream_limit_leaves_no_request_behind(gw: Gw) -> None:
    """Concurrent speech calls with one stream slot free: the refused ones (429) must leave nothing enqueued.

    The bodies are held back until all four calls hold a call slot, then finished together,
    so every handler reaches its stream check before any has taken the slot.
    """
    _wait_slots(gw, "streams", 0)
    key, _ = gw.key("gina")
    rid = _enqueue(gw, key, LONG)
    go, release = threading.Event(), threading.Event()
    answers: list[int] = []
    body = json.dumps({"input": LONG, "voice": "jm_kumo", "response_format": "pcm"}).encode()

    def held_body() -> Iterator[bytes]:
        yield body[:20]
        go.wait(10)
        yield body[20:]

    def speak() -> None:
        try:
            with gw.http.stream("POST", f"{gw.base}/v1/audio/speech", content=held_body(), headers=_auth(key)) as resp:
                answers.append(resp.status_code)
                if resp.status_code == 200:
                    release.wait(10)  # the admitted stream stays open until every answer is in
                else:
                    resp.read()
        except httpx.HTTPError:
            answers.append(-1)  # reported by the assertion on the answers

    threads = [threading.Thread(target=speak) for _ in range(CALLS_PER_TENANT)]
    live: list[bytes] = []
    try:
        with ExitStack() as held:
            for _ in range(STREAMS_PER_TENANT - 1):
                resp = held.enter_context(gw.http.stream("GET", _events_url(gw, rid), headers=_auth(key)))
                assert resp.status_code == 200
            for t in threads:
                t.start()
            _wait_slots(gw, "calls", CALLS_PER_TENANT)
            go.set()
            deadline = time.monotonic() + 10
            while len(answers) < len(threads) and time.monotonic() < deadline:
                time.sleep(0.05)
            for name in gw.r.scan_iter(match="*:req:*", count=1000):
                tenant, status = gw.r.hmget(name, "tenant", "status")
                if tenant == b"gina" and status in (b"queued", b"running"):
                    live.append(name)
    finally:
        go.set()
        release.set()
        for t in threads:
            t.join(15)
        for name in gw.r.scan_iter(match="*:req:*", count=1000):
            if gw.r.hget(name, "tenant") == b"gina":
                gw.http.delete(f"{gw.base}/v1/requests/{name.decode().rsplit(':req:', 1)[1]}", headers=_auth(key))
    assert sorted(answers) == [200] + [429] * (len(threads) - 1), answers
    assert len(live) == 2, f"{len(live)} requests of gina queued or running; 2 were admitted (events + one speech)"


# -- 2. WebSockets hold stream slots -------------------------------------------------------


def test_websockets_count_as_streams(gw: Gw) -> None:
    _wait_slots(gw, "streams", 0)  # earlier tests' streams are gone
    with ExitStack() as held:
        for _ in range(STREAMS_PER_TENANT):
            held.enter_context(_ws_connect(gw, gw.a))  # the slot is taken before the handshake completes
        with pytest.raises(InvalidStatus) as refused:  # refused at the handshake, as an HTTP 429
            _ws_connect(gw, gw.a)
        assert refused.value.response.status_code == 429
        assert int(refused.value.response.headers["Retry-After"]) >= 1
        assert b"too_many_streams" in refused.value.response.body
        over = _probe(gw, f"{gw.base}/v1/models", _auth(gw.a))  # calls are not streams: still served
        assert over.status_code == 200
        with _ws_connect(gw, gw.b) as ws:
            ws.send(json.dumps({"input": TWO, "voice": "jm_kumo"}))
            header = json.loads(ws.recv(timeout=10))
            assert header["event"] == "header" and header["segments"] == 2
            pcm = 0
            while isinstance(msg := ws.recv(timeout=10), bytes):
                pcm += len(msg)
            assert json.loads(msg) == {"event": "end", "id": header["id"], "status": "ok"}
            assert pcm == 2 * CHUNKS * FRAME_BYTES
    assert _wait_slots(gw, "streams", 0), "closed sockets give their slots back"


# -- 3. body cap ---------------------------------------------------------------------------


def test_bodies_over_one_mib_are_413_while_read(gw: Gw) -> None:
    url, h = f"{gw.base}/v1/requests", _auth(gw.a)
    too_big = b'{"input": "' + b"a" * MIB + b'"}'
    declared = gw.http.post(url, content=too_big, headers=h)
    assert "1048576 bytes" in _error(declared, 413, "body_too_large")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(too_big), 64 * 1024):
            yield too_big[i : i + 64 * 1024]

    chunked = gw.http.post(url, content=chunks(), headers=h)
    assert "content-length" not in chunked.request.headers and chunked.request.headers["transfer-encoding"] == "chunked"
    _error(chunked, 413, "body_too_large")

    padded = json.dumps({"input": TWO, "voice": "jm_kumo", "pad": "a" * (MIB - 200)}).encode()
    assert len(padded) <= MIB
    just_under = gw.http.post(url, content=padded, headers=h)
    assert just_under.status_code == 202, just_under.text  # the cap is 1 MiB, not less
    _cancel(gw, gw.a, just_under.json()["id"])


# -- 4. validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "code", "says"),
    [
        ("/v1/requests", "[" * 100_000, "invalid_json", "JSON"),
        ("/v1/requests", '{"input":"你好","x":' + "[" * 40 + "]" * 40 + "}", "invalid_json", "nests deeper"),
        ("/v1/requests", json.dumps({"input": TWO, "voice": ["jm_kumo"]}), "invalid_input", "'voice'"),
        ("/v1/requests", json.dumps({"input": TWO, "voice": 7}), "invalid_input", "'voice'"),
        ("/v1/requests", '{"input":"你好","speed":1e400}', "invalid_input", "'speed'"),
        ("/v1/requests", '{"input":"你好","speed":true}', "invalid_input", "'speed'"),
        ("/v1/requests", '{"input":"你好","deadline_s":"soon"}', "invalid_input", "'deadline_s'"),
        ("/v1/requests", '{"input":"你好","deadline_s":NaN}', "invalid_input", "'deadline_s'"),
        ("/v1/requests", '{"input":"你好","deadline_s":Infinity}', "invalid_input", "'deadline_s'"),
        ("/v1/audio/speech", '{"input":"你好","sample_rate":Infinity}', "invalid_input", "sample_rate"),
        ("/v1/requests", json.dumps({"input": "😀😀"}), "invalid_input", "nothing to speak"),
        ("/v1/requests", json.dumps({"input": "\u0001\u0002"}), "invalid_input", "nothing to speak"),
        # an integer too large for a float (math.isfinite raises OverflowError)
        ("/v1/requests", '{"input":"你好","speed":1' + "0" * 400 + "}", "invalid_input", "'speed'"),
        ("/v1/requests", '{"input":"你好","deadline_s":1' + "0" * 400 + "}", "invalid_input", "'deadline_s'"),
        # str.isdigit() is true for "²", int("²") raises ValueError
        (
            "/v1/audio/speech",
            '{"input":"你好","response_format":"pcm","sample_rate":"²"}',
            "invalid_input",
            "sample_rate",
        ),
    ],
    ids=(
        "deep-brackets depth-41 voice-list voice-number speed-1e400 speed-true deadline-soon deadline-nan "
        "deadline-inf rate-inf emoji-only control-only speed-huge-int deadline-huge-int rate-superscript-digit"
    ).split(),
)
def test_bad_input_is_a_400_with_a_code(gw: Gw, path: str, raw: str, code: str, says: str) -> None:
    with httpx.Client(timeout=15, event_hooks={"response": [_record]}) as http:  # a 500 would drop the connection
        resp = http.post(f"{gw.base}{path}", content=raw.encode(), headers=_auth(gw.a))
    assert says in _error(resp, 400, code)


def test_voice_object_is_accepted(gw: Gw) -> None:
    resp = gw.http.post(f"{gw.base}/v1/requests", json={"input": TWO, "voice": {"id": "jm_kumo"}}, headers=_auth(gw.a))
    assert resp.status_code == 202 and resp.json()["segments"] == 2, resp.text
    _cancel(gw, gw.a, resp.json()["id"])


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 9999), ("aac", 47999)])
def test_unsupported_sample_rate_is_a_400_before_anything_streams(gw: Gw, fmt: str, rate: int) -> None:
    key, _ = gw.key("rates")
    body = {"input": TWO, "voice": "jm_kumo", "response_format": fmt, "sample_rate": rate}
    with gw.http.stream("POST", f"{gw.base}/v1/audio/speech", json=body, headers=_auth(key)) as resp:
        resp.read()
    message = _error(resp, 400, "invalid_input")
    allowed = supported_rates(fmt)
    assert allowed is not None and f"not {rate}" in message
    assert all(str(r) in message for r in allowed), message
    assert gw.r.hget(Keys().depth(), "rates") in (None, b"0"), "nothing was enqueued"
    assert _metric(gw, 'chorus_gateway_enqueued_total{tenant="rates"}') is None
    assert _wait_slots(gw, "streams", 0, timeout=1)


@pytest.mark.parametrize(
    ("header", "query"),
    [("garbage", ""), (None, "?last_event_id=1-1%0A"), (None, "?last_event_id=99999999999999999999-0")],
    ids=["header-garbage", "query-trailing-newline", "query-beyond-64-bits"],
)
def test_bad_last_event_id_is_a_400(gw: Gw, header: str | None, query: str) -> None:
    rid = _enqueue(gw, gw.a, TWO)
    headers = {**_auth(gw.a), **({"Last-Event-ID": header} if header else {})}
    resp = _probe(gw, _events_url(gw, rid) + query, headers)
    _cancel(gw, gw.a, rid)
    assert "Last-Event-ID" in _error(resp, 400, "invalid_input")


# -- 5. a request that can never fit -------------------------------------------------------


def test_a_request_over_max_queued_is_413_and_the_openai_client_does_not_retry(gw: Gw) -> None:
    Tenants(gw.r).set("tiny", TenantPolicy(max_queued=1))
    key, _ = gw.key("tiny")
    sent: list[str] = []
    hooks: dict[str, list[Any]] = {"request": [lambda req: sent.append(req.url.path)], "response": [_record]}
    with httpx.Client(timeout=15, event_hooks=hooks) as http:
        client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=key, http_client=http)  # default max_retries
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            client.audio.speech.create(model="tts-1", voice="alloy", input=TWO)
        elapsed = time.monotonic() - started
    assert caught.value.status_code == 413 and "retry-after" not in caught.value.response.headers
    error = caught.value.response.json()["error"]
    assert error["code"] == "request_too_large" and "queue limit of 1" in error["message"], error
    assert sent == ["/v1/audio/speech"], f"retried: {sent}"
    assert elapsed < 2, f"{elapsed:.2f}s"


# -- 6. WebSocket protocol -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code"),
    [(b"\x00\x01", 1003), ("{nope", 1007), ("[1, 2]", 1007), ("x" * (MIB + 1), 1009)],
    ids=["binary", "invalid-json", "json-array", "over-1-mib"],
)
def test_websocket_bad_messages_close_with_a_code(gw: Gw, message: str | bytes, code: int) -> None:
    with _ws_connect(gw, gw.a) as ws:
        ws.send(message)
        assert _close_code(ws) == code


@pytest.mark.parametrize("key", ["", "ck_not-a-key"])
def test_websocket_without_a_valid_key_closes_4401(gw: Gw, key: str) -> None:
    with connect(gw.ws(key), open_timeout=5) as ws:
        assert _close_code(ws) == 4401


def test_websocket_closes_4401_when_its_key_is_revoked(gw: Gw) -> None:
    key, key_id = gw.key("erin")
    with _ws_connect(gw, key) as ws:
        ws.send(json.dumps({"input": TWO, "voice": "jm_kumo"}))
        assert json.loads(ws.recv(timeout=10))["event"] == "header"
        started = time.monotonic()
        ApiKeys(gw.r).revoke(key_id)
        assert _close_code(ws) == 4401
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"closed {elapsed:.2f}s after the revocation"
    refused = _probe(gw, f"{gw.base}/v1/models", _auth(key))
    _error(refused, 401, "unauthorized")


def test_websocket_serves_queued_requests_in_order(gw: Gw) -> None:
    key, _ = gw.key("frank")
    events: list[dict[str, Any]] = []
    audio = [0, 0]
    with _ws_connect(gw, key) as ws:
        ws.send(json.dumps({"input": TWO, "voice": "jm_kumo"}))
        ws.send(json.dumps({"input": TWO, "voice": "jf_alpha"}))  # sent while the first streams
        while sum(e["event"] in ("end", "error") for e in events) < 2:
            msg = ws.recv(timeout=15)
            if isinstance(msg, bytes):
                audio[sum(e["event"] == "end" for e in events)] += len(msg)
            else:
                events.append(json.loads(msg))
    assert [e["event"] for e in events] == ["header", "end", "header", "end"], events
    assert events[0]["id"] == events[1]["id"] != events[2]["id"] == events[3]["id"], events
    assert events[1]["status"] == events[3]["status"] == "ok", events
    assert audio == [2 * CHUNKS * FRAME_BYTES] * 2, "each request's audio between its header and its end"


# -- 7. Origin -----------------------------------------------------------------------------


def test_origin_allow_list(gw: Gw) -> None:
    url, h = f"{gw.base}/v1/requests", _auth(gw.a)
    evil = gw.http.post(url, json={"input": TWO}, headers={**h, "Origin": EVIL})
    _error(evil, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in evil.headers

    ok = gw.http.post(url, json={"input": TWO, "voice": "jm_kumo"}, headers={**h, "Origin": ORIGIN})
    assert ok.status_code == 202 and ok.headers["access-control-allow-origin"] == ORIGIN, (ok.text, ok.headers)
    _cancel(gw, gw.a, ok.json()["id"])

    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    preflight = gw.http.options(url, headers={"Origin": ORIGIN, **asks})
    assert preflight.status_code == 200, preflight.text
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert "authorization" in allowed and preflight.headers["access-control-allow-origin"] == ORIGIN

    try:
        ws = _ws_connect(gw, gw.a, origin=EVIL)
    except InvalidStatus as exc:
        refusal = exc.response.status_code
    else:
        with ws:
            refusal = _close_code(ws)
    assert refusal in (403, 4403), refusal

    with _ws_connect(gw, gw.a, origin=ORIGIN) as ws:  # the allowed origin still connects
        ws.send(json.dumps({"cancel": True}))
        ws.ping().wait(5)


@pytest.mark.parametrize(
    "path,method",
    [
        ("/v1/audio/speech", "POST"),
        ("/v1/requests", "POST"),
        ("/v1/models", "GET"),
        ("/v1/requests/s0.AAAAAAAAAAAAAAAAAAAAAA/audio", "GET"),
        ("/v1/requests/s0.AAAAAAAAAAAAAAAAAAAAAA", "DELETE"),
    ],
)
def test_preflight_is_answered_on_every_api_route(gw: Gw, path: str, method: str) -> None:
    asks = {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": "authorization, content-type"}
    ok = gw.http.options(f"{gw.base}{path}", headers={"Origin": ORIGIN, **asks})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN, ok.text
    assert method in ok.headers["access-control-allow-methods"]
    other = gw.http.options(f"{gw.base}{path}", headers={"Origin": EVIL, **asks})
    assert "access-control-allow-origin" not in other.headers, "other origins get no allow header"


def test_a_page_on_the_allowed_origin_can_read_the_request_id_and_rate(gw: Gw) -> None:
    body = {"input": TWO, "voice": "jm_kumo", "response_format": "pcm"}
    with gw.http.stream(
        "POST", f"{gw.base}/v1/audio/speech", json=body, headers={**_auth(gw.a), "Origin": ORIGIN}
    ) as resp:
        exposed = {h.strip().lower() for h in resp.headers["access-control-expose-headers"].split(",")}
        rid = resp.headers["x-request-id"]
    assert {"x-request-id", "x-sample-rate"} <= exposed
    _cancel(gw, gw.a, rid)


def test_unknown_model_is_a_400_and_an_empty_voice_means_not_given(gw: Gw) -> None:
    url, h = f"{gw.base}/v1/requests", _auth(gw.a)
    _error(gw.http.post(url, json={"input": TWO, "model": "whisper-1"}, headers=h), 400, "invalid_model")
    made = gw.http.post(url, json={"input": "Hello there.", "voice": "", "model": "tts-1"}, headers=h)
    assert made.status_code == 202, made.text
    voice = gw.r.hget(Keys().request(made.json()["id"]), "voice")
    assert voice == b"en_joe", "English text with no voice gets the English default, not the Mandarin one"
    _cancel(gw, gw.a, made.json()["id"])


# -- 8. operations endpoints ---------------------------------------------------------------


def test_metrics_token_and_json_404_405(gw: Gw) -> None:
    bare = gw.http.get(f"{gw.base}/metrics")
    _error(bare, 401, "unauthorized")
    wrong = gw.http.get(f"{gw.base}/metrics", headers=_auth("not-the-token"))
    _error(wrong, 401, "unauthorized")
    ok = gw.http.get(f"{gw.base}/metrics", headers=_auth(METRICS_TOKEN))
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert "# TYPE chorus_gateway_slots_in_use gauge" in ok.text and "chorus_gateway_requests_total" in ok.text

    assert "/nope" in _error(gw.http.get(f"{gw.base}/nope"), 404, "not_found")
    put = gw.http.put(f"{gw.base}/v1/requests", json={"input": TWO}, headers=_auth(gw.a))
    _error(put, 405, "method_not_allowed")


# -- 9. --no-auth binds loopback only ------------------------------------------------------


def test_no_auth_refuses_a_public_bind(gw: Gw, redis_server: object) -> None:
    env = {**os.environ, "CHORUS_REDIS_URL": redis_server.url}  # type: ignore[attr-defined]
    res = subprocess.run(
        [sys.executable, "-m", "chorus", "gateway", "--no-auth", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert res.returncode != 0 and "loopback" in res.stderr, (res.returncode, res.stderr)


# -- 10. never a 500 -----------------------------------------------------------------------


def test_nothing_above_was_a_server_error(gw: Gw) -> None:
    assert len(SEEN) > 20, "run with the rest of the module"
    unexpected = [s for s in SEEN if s[0] >= 500 and not (s[0] == 503 and s[2] == "gateway_busy")]
    assert not unexpected, unexpected
    assert 1011 not in WS_CLOSES, WS_CLOSES


def test_query_string_keys_only_where_a_browser_cannot_send_headers(gw: Gw) -> None:
    """A key in a URL ends up in proxy logs, history and Referer: it is taken on the WebSocket
    upgrade and on GET of a request's audio and events, and refused (401) everywhere else."""
    query = {"api_key": gw.a}
    speech = {"model": "tts-1", "input": "你好。", "voice": "jm_kumo"}
    refused = [
        gw.http.post(f"{gw.base}/v1/audio/speech", params=query, json=speech),
        gw.http.post(f"{gw.base}/v1/requests", params=query, json=speech),
        gw.http.get(f"{gw.base}/v1/models", params=query),
        gw.http.get(f"{gw.base}/v1/audio/voices", params=query),
        gw.http.delete(f"{gw.base}/v1/requests/s0.AAAAAAAAAAAAAAAAAAAAAA", params=query),
    ]
    for resp in refused:
        assert "query string" in _error(resp, 401, "unauthorized")
    created = gw.http.post(f"{gw.base}/v1/requests", headers=_auth(gw.a), json=speech)
    assert created.status_code in (200, 201, 202), created.text
    rid = created.json()["id"]
    audio = gw.http.get(f"{gw.base}/v1/requests/{rid}/audio", params={**query, "format": "pcm"})
    assert audio.status_code == 200 and len(audio.content) > 0
    with gw.http.stream("GET", f"{gw.base}/v1/requests/{rid}/events", params=query) as events:
        assert events.status_code == 200
    with _ws_connect(gw, gw.a):  # the upgrade takes it
        pass


def test_a_websocket_message_is_capped_before_it_is_buffered_or_inflated(gw: Gw) -> None:
    """The server negotiates no permessage-deflate (so 16 KB on the wire cannot become 16 MiB of
    JSON), and a message over the body limit is refused by the protocol layer (1009) unread; the
    gateway keeps answering meanwhile."""
    from gateway.http import DEFAULT_MAX_BODY_BYTES

    url = gw.ws(gw.a)
    with connect(url, proxy=None, open_timeout=5, compression="deflate", max_size=None) as ws:
        assert ws.protocol.extensions == []  # offered deflate, got none
        # one byte over the limit, as a second fragment: the first (at the limit) is on the wire
        # before the server can refuse, so the client's send never races the server's close
        ws.send(["x" * DEFAULT_MAX_BODY_BYTES, "x"])
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    t0 = time.monotonic()
    assert gw.http.get(f"{gw.base}/healthz").status_code == 200
    assert time.monotonic() - t0 < 1.0
