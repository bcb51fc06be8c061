"""The gateway as a real uvicorn process, with real Redis and real worker processes.

The workers run the real Worker with a backend that makes six 100 ms frames of
tone per segment (20 ms apart), so durations are known and long requests last
long enough to disconnect from.
"""

from __future__ import annotations

import io
import json
import time
import wave

import av
import httpx
import pytest
from openai import OpenAI

from broker.policy import TenantPolicy
from broker.tenants import Tenants
from chorus_client.keys import Keys
from gateway.auth import ApiKeys

pytestmark = pytest.mark.slow
SEGMENT_S = 0.6  # six 100 ms frames per segment (see the stack fixture in conftest.py)
TWO = "你好，世界！今天天气很好。"  # two segments


def _auth(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _decode(data: bytes, fmt: str) -> float:
    """Seconds of audio in an encoded stream, decoded independently."""
    if fmt == "pcm":
        return len(data) / 2 / 24000
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as w:  # our streaming header claims the maximum size
            return len(data[44:]) / 2 / w.getframerate()
    container = av.open(
        io.BytesIO(data), format={"mp3": "mp3", "opus": "ogg", "flac": "flac", "aac": "aac", "m4a": "mp4"}[fmt]
    )
    samples, rate = 0, 1
    for frame in container.decode(audio=0):
        samples, rate = samples + frame.samples, frame.sample_rate
    container.close()
    return samples / rate


def test_openai_client_streams_speech_unmodified(stack: dict[str, object]) -> None:
    client = OpenAI(base_url=f"{stack['base']}/v1", api_key=str(stack["a"]))
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TWO, response_format="wav"
    ) as resp:
        chunks = list(resp.iter_bytes())
    assert len(chunks) > 1, "streamed in pieces, not one body"
    assert abs(_decode(b"".join(chunks), "wav") - 2 * SEGMENT_S) < 0.01
    models = {m.id for m in client.models.list()}
    assert {"tts-1", "kokoro"} <= models


@pytest.mark.parametrize("fmt", ["pcm", "wav", "mp3", "opus", "flac", "aac", "m4a"])
def test_every_format_decodes_to_the_right_length(stack: dict[str, object], fmt: str) -> None:
    body = {"model": "tts-1", "input": TWO, "voice": "jm_kumo", "response_format": fmt}
    with httpx.stream(
        "POST", f"{stack['base']}/v1/audio/speech", headers=_auth(stack["a"]), timeout=30, json=body
    ) as resp:
        assert resp.status_code == 200, resp.read()
        data = b"".join(resp.iter_bytes())
    seconds = _decode(data, fmt)
    assert abs(seconds - 2 * SEGMENT_S) < 0.1, f"{fmt}: {seconds:.3f}s"  # mp3/aac add encoder priming


def test_resampling_on_request(stack: dict[str, object]) -> None:
    body = {"input": TWO, "voice": "jm_kumo", "response_format": "pcm", "sample_rate": 16000}
    resp = httpx.post(f"{stack['base']}/v1/audio/speech", headers=_auth(stack["a"]), timeout=30, json=body)
    assert resp.headers["X-Sample-Rate"] == "16000"
    assert abs(len(resp.content) / 2 / 16000 - 2 * SEGMENT_S) < 0.02


def test_no_voice_or_an_openai_voice_reads_each_segment_in_its_language(stack: dict[str, object]) -> None:
    """Without a voice (or with one of OpenAI's names) each segment gets the catalog's default voice of
    its language; the request keeps its first voice's sample rate."""
    base, h = stack["base"], _auth(stack["a"])
    for voice in (None, "alloy"):
        body = {"input": "Hello from chorus."} | ({"voice": voice} if voice else {})
        english = httpx.post(f"{base}/v1/requests", json=body, headers=h, timeout=30)
        assert english.status_code == 202, english.text
        assert english.json()["voices"] == ["en_joe"] and english.json()["sample_rate"] == 22050, voice
    text = "你好。Hello world. 再见。"
    mixed = httpx.post(f"{base}/v1/requests", json={"input": text}, headers=h, timeout=30)
    assert mixed.status_code == 202
    assert mixed.json()["voices"] == ["zm_yunxi", "en_joe", "zm_yunxi"] and mixed.json()["sample_rate"] == 24000
    rid = mixed.json()["id"]
    audio = httpx.get(f"{base}/v1/requests/{rid}/audio?format=pcm", headers=h, timeout=30)
    assert audio.status_code == 200 and abs(len(audio.content) / 48000 - 3 * SEGMENT_S) < 0.01
    nova = httpx.post(f"{base}/v1/requests", json={"input": text, "voice": "nova"}, headers=h)
    assert nova.json()["voices"] == ["zm_yunxi", "en_joe", "zm_yunxi"]
    named = httpx.post(f"{base}/v1/requests", json={"input": text, "voice": "jm_kumo"}, headers=h)
    assert named.json()["voices"] == ["jm_kumo"] * 3, "a named voice reads every segment"


def test_auth_and_isolation(stack: dict[str, object]) -> None:
    base = stack["base"]
    assert httpx.post(f"{base}/v1/requests", json={"input": TWO}).status_code == 401
    bad = httpx.post(f"{base}/v1/requests", json={"input": TWO}, headers=_auth("ck_nope"))
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    made = httpx.post(f"{base}/v1/requests", json={"input": TWO}, headers=_auth(stack["a"]))
    assert made.status_code == 202
    rid = made.json()["id"]
    for method, path in (("GET", "/audio"), ("GET", "/events"), ("DELETE", "")):
        other = httpx.request(method, f"{base}/v1/requests/{rid}{path}", headers=_auth(stack["b"]))
        assert other.status_code == 404, (method, path)
    mine = httpx.get(f"{base}/v1/requests/{rid}/audio?format=pcm", headers=_auth(stack["a"]), timeout=30)
    assert mine.status_code == 200 and abs(len(mine.content) / 48000 - 2 * SEGMENT_S) < 0.01


def test_head_probes_start_nothing_and_cancel_nothing(stack: dict[str, object]) -> None:
    """Media players send HEAD before GET: it answers the headers and must not cancel the request."""
    base = stack["base"]
    made = httpx.post(f"{base}/v1/requests", json={"input": TWO}, headers=_auth(stack["a"]))
    rid = made.json()["id"]
    for path in ("audio?format=pcm&keep=0", "events?keep=0"):
        head = httpx.head(f"{base}/v1/requests/{rid}/{path}", headers=_auth(stack["a"]), timeout=10)
        assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")
    audio = httpx.get(f"{base}/v1/requests/{rid}/audio?format=pcm", headers=_auth(stack["a"]), timeout=30)
    assert audio.status_code == 200 and abs(len(audio.content) / 48000 - 2 * SEGMENT_S) < 0.01


def test_bad_input_is_a_clear_400(stack: dict[str, object]) -> None:
    base, h = stack["base"], _auth(stack["a"])
    assert httpx.post(f"{base}/v1/requests", content=b"\xff", headers=h).status_code == 400
    assert httpx.post(f"{base}/v1/requests", json={"input": ""}, headers=h).status_code == 400
    unknown = httpx.post(f"{base}/v1/requests", json={"input": TWO, "voice": "nobody"}, headers=h)
    assert unknown.status_code == 400 and "unknown voice" in unknown.json()["error"]["message"]
    assert (
        httpx.post(f"{base}/v1/audio/speech", json={"input": TWO, "response_format": "ogg"}, headers=h).status_code
        == 400
    )


def test_queue_cap_is_a_429_with_retry_after(stack: dict[str, object]) -> None:
    r = stack["r"]
    Tenants(r).set("carol", TenantPolicy(max_queued=3))  # type: ignore[arg-type]
    key, _ = ApiKeys(r).add("carol")  # type: ignore[arg-type]
    r.hset(Keys().depth(), "carol", 2)  # type: ignore[attr-defined]  # two segments already queued
    try:
        resp = httpx.post(f"{stack['base']}/v1/requests", json={"input": TWO}, headers=_auth(key))
    finally:
        r.hdel(Keys().depth(), "carol")  # type: ignore[attr-defined]
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "queue full" in resp.json()["error"]["message"]


def test_a_request_that_can_never_fit_the_queue_cap_is_not_retryable(stack: dict[str, object]) -> None:
    r = stack["r"]
    Tenants(r).set("dave", TenantPolicy(max_queued=1))  # type: ignore[arg-type]
    key, _ = ApiKeys(r).add("dave")  # type: ignore[arg-type]
    resp = httpx.post(f"{stack['base']}/v1/requests", json={"input": TWO}, headers=_auth(key))
    assert resp.status_code == 413 and "Retry-After" not in resp.headers
    error = resp.json()["error"]
    assert error["code"] == "request_too_large" and "queue limit of 1" in error["message"]


def test_policy_refusals_are_403(stack: dict[str, object]) -> None:
    r = stack["r"]
    Tenants(r).set("bulk", TenantPolicy(lanes=("batch",)))  # type: ignore[arg-type]
    key, _ = ApiKeys(r).add("bulk")  # type: ignore[arg-type]
    refused = httpx.post(f"{stack['base']}/v1/requests", json={"input": TWO}, headers=_auth(key))
    assert refused.status_code == 403 and "may not use lane" in refused.json()["error"]["message"]
    ok = httpx.post(f"{stack['base']}/v1/requests", json={"input": TWO, "priority": "batch"}, headers=_auth(key))
    assert ok.status_code == 202


def _events(resp: httpx.Response, stop_after: int | None = None) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    event: dict[str, object] = {}
    for line in resp.iter_lines():
        if not line:
            if event:
                out.append(event)
                event = {}
                if stop_after is not None and sum(e["event"] == "audio" for e in out) >= stop_after:
                    break
            continue
        name, _, value = line.partition(": ")
        event[name] = json.loads(value) if name == "data" else value
    return out


def test_sse_resumes_with_last_event_id(stack: dict[str, object]) -> None:
    base, h = stack["base"], _auth(stack["a"])
    made = httpx.post(
        f"{base}/v1/requests", json={"input": "你好，世界！今天天气很好，我们一起去公园散步吧。"}, headers=h
    )
    rid, segments = made.json()["id"], made.json()["segments"]
    with httpx.stream("GET", f"{base}/v1/requests/{rid}/events", headers=h, timeout=30) as resp:
        first = _events(resp, stop_after=5)  # then the client drops the connection
    last_id = [e["id"] for e in first if "id" in e][-1]
    with httpx.stream(
        "GET", f"{base}/v1/requests/{rid}/events", headers={**h, "Last-Event-ID": str(last_id)}, timeout=30
    ) as resp:
        rest = _events(resp)
    heard = [(e["data"]["seg"], e["data"]["idx"]) for e in first + rest if e["event"] == "audio"]  # type: ignore[index]
    assert segments >= 2 and heard == [(s, i) for s in range(segments) for i in range(6)], "no frame twice or missing"
    assert rest[-1]["event"] == "end" and rest[-1]["data"]["status"] == "ok"  # type: ignore[index]


def test_disconnect_cancels_unless_kept(stack: dict[str, object]) -> None:
    base, h, r = stack["base"], _auth(stack["a"]), stack["r"]
    long_text = "".join(f"第{i}段。" for i in range(30))
    for keep, expected in ((False, b"cancelled"), (True, b"running")):
        with httpx.stream(
            "POST",
            f"{base}/v1/audio/speech",
            headers=h,
            timeout=30,
            json={"input": long_text, "response_format": "pcm", "keep": keep},
        ) as resp:
            rid = resp.headers["X-Request-Id"]
            next(resp.iter_bytes())  # the first audio, then the client goes away
        time.sleep(0.5)
        status = r.hget(Keys().request(rid), "status")  # type: ignore[attr-defined]
        assert status == expected or (keep and status in (b"running", b"queued", b"done")), status


def test_delete_cancels(stack: dict[str, object]) -> None:
    base, h = stack["base"], _auth(stack["a"])
    rid = httpx.post(f"{base}/v1/requests", json={"input": "".join(f"第{i}段。" for i in range(30))}, headers=h).json()[
        "id"
    ]
    assert httpx.delete(f"{base}/v1/requests/{rid}", headers=h).json() == {"id": rid, "cancelled": True}
    events = _events(httpx.get(f"{base}/v1/requests/{rid}/events", headers=h, timeout=30))
    assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "cancelled"  # type: ignore[index]


def test_websocket_streams_frames(stack: dict[str, object]) -> None:
    from websockets.sync.client import connect

    ws_url = str(stack["base"]).replace("http", "ws") + f"/v1/ws?api_key={stack['a']}"
    with connect(ws_url) as ws:
        ws.send(json.dumps({"input": TWO, "voice": "jm_kumo"}))
        header = json.loads(ws.recv())
        assert header["event"] == "header" and header["segments"] == 2
        pcm = b""
        while True:
            msg = ws.recv(timeout=30)
            if isinstance(msg, bytes):
                pcm += msg
                continue
            end = json.loads(msg)
            break
    assert end["event"] == "end" and end["status"] == "ok"
    assert abs(len(pcm) / 48000 - 2 * SEGMENT_S) < 0.01


def test_operations_endpoints(stack: dict[str, object]) -> None:
    base = stack["base"]
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["status"] == "ready" and ready["workers"] >= 2
    assert httpx.get(f"{base}/metrics").status_code == 401, "metrics need the token"
    metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {stack['metrics_token']}"}).text
    assert "chorus_gateway_time_to_first_audio_seconds_bucket" in metrics and "chorus_gateway_frames_total" in metrics
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and "chorusReport" in page.text


def test_a_finished_request_is_replayed_as_a_complete_file_with_its_length(stack: dict[str, object]) -> None:
    """Once the request has ended, its audio is one file that describes itself: WAV with its real
    sizes, FLAC with its total samples, MP3 with its LAME/Xing header, each with a Content-Length
    (a streamed one says 0xFFFFFFFF or 0 samples, and players guess), and HEAD says the same length."""
    base, h = stack["base"], _auth(stack["a"])
    rid = httpx.post(f"{base}/v1/requests", json={"input": TWO}, headers=h).json()["id"]
    live = httpx.get(f"{base}/v1/requests/{rid}/audio?format=wav", headers=h, timeout=30)  # to the end
    assert live.content[4:8] == b"\xff\xff\xff\xff"  # streamed while it was being made
    expected = 2 * SEGMENT_S
    for fmt in ("wav", "flac", "mp3", "opus", "pcm"):
        resp = httpx.get(f"{base}/v1/requests/{rid}/audio?format={fmt}", headers=h, timeout=30)
        assert resp.status_code == 200 and int(resp.headers["content-length"]) == len(resp.content), fmt
        head = httpx.head(f"{base}/v1/requests/{rid}/audio?format={fmt}", headers=h, timeout=30)
        assert head.headers["content-length"] == resp.headers["content-length"] and head.content == b""
        assert abs(_decode(resp.content, fmt) - expected) < 0.01, (fmt, _decode(resp.content, fmt))
        if fmt != "pcm":
            container = av.open(io.BytesIO(resp.content))
            assert container.duration is not None and abs(container.duration / 1e6 - expected) < 0.03, fmt
    wav = httpx.get(f"{base}/v1/requests/{rid}/audio?format=wav", headers=h, timeout=30).content
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() == (len(wav) - 44) // 2  # the header's sizes are the real ones
