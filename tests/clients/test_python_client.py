"""The light Python client (clients/python): its API against a real redis-server and a real worker,
its install footprint in a fresh virtualenv, and that its I/O loops exist once."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis

from broker.policy import TenantPolicy
from broker.tenants import Tenants
from chorus.testing import paced_config, paced_engine, start_worker, stop_processes, wait_for_workers
from chorus_client import AsyncClient, Client, RequestStatus
from chorus_client.enqueue import voices_from_hash
from chorus_client.errors import QueueFull, RequestCancelled, RequestNotFound, UnknownVoice
from chorus_client.keys import Keys
from shared.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis) -> Iterator[str]:
    """A paced worker (3 chunks of tone per segment) on the session's redis-server."""
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    proc = start_worker(redis_server.url, "client-test", partial(paced_engine, 3, 0.01), paced_config(2.0))
    try:
        wait_for_workers(r, Keys(), 1, procs=[proc])
        for _ in range(100):  # the voices hash is written with the first heartbeat
            if r.hexists(Keys().voices(), "jm_kumo"):
                break
            time.sleep(0.05)
        yield redis_server.url
    finally:
        stop_processes([proc])
        r.close()


def test_enqueue_frames_status(stack: str) -> None:
    client = Client.from_url(stack)
    req = client.enqueue("你好，世界！今天天气很好。", tenant="acme", voice="jm_kumo")
    assert req.segments >= 1 and req.sample_rate == 24000
    frames = list(req.frames(timeout_s=20))
    assert frames, "no audio"
    order = [(f.segment, f.index) for f in frames]
    assert order == sorted(order) and len(set(order)) == len(order), "frames out of order or repeated"
    assert {f.segment for f in frames} == set(range(req.segments))
    state = req.status()
    assert state.status == RequestStatus.DONE and state.done == state.segments == req.segments
    assert req.wait(timeout_s=5).finished


def test_presegmented_and_english_voice(stack: str) -> None:
    client = Client.from_url(stack)
    req = client.enqueue(["Hello there.", "Second part."], tenant="acme", voice="en_joe", priority="batch")
    assert req.segments == 2
    assert req.wait(timeout_s=20).status == RequestStatus.DONE


def test_voice_must_be_served(stack: str) -> None:
    client = Client.from_url(stack)
    with pytest.raises(UnknownVoice) as err:
        client.enqueue("你好", tenant="acme", voice="nobody")
    assert "jm_kumo" in err.value.known, "the error lists the voices workers serve"


MIXED = "你好。Hello world. 再见。"


def test_no_voice_each_segment_gets_its_languages_default_from_the_hash(stack: str) -> None:
    client = Client.from_url(stack)
    req = client.enqueue(MIXED, tenant="acme")
    assert req.voices == ("zm_yunxi", "en_joe", "zm_yunxi"), "the workers mark zm_yunxi and en_joe as defaults"
    frames = list(req.frames(timeout_s=20))
    assert {f.segment for f in frames} == {0, 1, 2} and {f.sample_rate for f in frames} == {req.sample_rate}
    assert client.enqueue("Hello there.", tenant="acme").voices == ("en_joe",)
    named = client.enqueue(MIXED, tenant="acme", voice="jf_alpha")
    assert named.voices == ("jf_alpha",) * 3, "a named voice still reads every segment"
    assert named.wait(timeout_s=20).status == RequestStatus.DONE


def test_no_voice_for_a_language_the_workers_serve_not(stack: str) -> None:
    r = redis.Redis.from_url(stack)
    only_zh = {k: v for k, v in r.hgetall(Keys().voices()).items() if json.loads(v)["lang"] == "zh"}
    client = Client(r, voices=voices_from_hash(only_zh))
    assert client.enqueue("你好。", tenant="acme").voices == ("zm_yunxi",)
    with pytest.raises(UnknownVoice) as err:
        client.enqueue(MIXED, tenant="acme")
    assert err.value.lang == "en" and "jm_kumo" in err.value.known
    r.close()


def test_cancel_and_unknown_request(stack: str) -> None:
    client = Client.from_url(stack)
    req = client.enqueue("一。" * 40, tenant="acme", voice="jm_kumo", priority="batch")
    assert req.cancel() is True
    assert req.cancel() is False, "a second cancel finds it ended"
    with pytest.raises(RequestCancelled):
        list(req.frames(timeout_s=10))
    assert req.status().status == RequestStatus.CANCELLED
    with pytest.raises(RequestNotFound):
        client.status("s0.AAAAAAAAAAAAAAAAAAAAAA")


def test_refusals_are_typed_with_retry_after(stack: str) -> None:
    r = redis.Redis.from_url(stack)
    Tenants(r).set("tiny", TenantPolicy(max_queued=1))
    client = Client.from_url(stack)
    try:
        with pytest.raises(QueueFull) as err:
            for _ in range(50):
                client.enqueue("一。", tenant="tiny", voice="jm_kumo", priority="batch")
        assert err.value.limit == 1
    finally:
        Tenants(r).delete("tiny")
        r.close()


def test_a_flushed_script_cache_is_refilled(stack: str) -> None:
    r = redis.Redis.from_url(stack)
    r.script_flush()  # a restart or failover empties the cache: EVALSHA answers NOSCRIPT
    req = Client(r).enqueue("你好。", tenant="acme", voice="jm_kumo")
    assert req.wait(timeout_s=20).status == RequestStatus.DONE


def test_async_client(stack: str) -> None:
    async def main() -> None:
        client = AsyncClient(aredis.Redis.from_url(stack))
        req = await client.enqueue("你好，世界！", tenant="acme", voice="jm_kumo")
        frames = [f async for f in req.frames(timeout_s=20)]
        assert {f.segment for f in frames} == set(range(req.segments))
        assert (await req.wait(timeout_s=5)).status == RequestStatus.DONE
        mixed = await client.enqueue(MIXED, tenant="acme")  # no voice: one per segment's language
        assert mixed.voices == ("zm_yunxi", "en_joe", "zm_yunxi")
        assert (await mixed.wait(timeout_s=20)).status == RequestStatus.DONE
        other = await client.enqueue("一。" * 30, tenant="acme", voice="jm_kumo", priority="batch")
        assert await other.cancel() is True
        assert (await other.status()).status == RequestStatus.CANCELLED
        await client.redis.aclose()

    asyncio.run(main())


def test_io_loops_are_written_once() -> None:
    """Sans-I/O: only chorus_client/drive.py talks to Redis or sleeps; every other module yields steps."""
    offenders = []
    for path in sorted((CLIENT / "chorus_client").glob("*.py")):
        if path.name in ("drive.py", "client.py"):  # the drivers; the API only hands operations to them
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("execute_command", "sleep", "pipeline", "xread"):
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Await):
                offenders.append(f"{path.name}:{node.lineno} await")
    assert not offenders, offenders
    client = (CLIENT / "chorus_client" / "client.py").read_text()
    assert "execute_command" not in client and "sleep" not in client and "xread" not in client


def test_assembled_scripts_are_current() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bin" / "build-lua"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_a_fresh_virtualenv_gets_the_client_and_nothing_else(stack: str, tmp_path: Path) -> None:
    """pip install of clients/python into an empty venv: redis, msgpack and the client only, and it
    enqueues and listens against the running worker."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(CLIENT)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, env=env)
    names = {p["name"].lower() for p in json.loads(listed.stdout)} - {"pip", "setuptools", "wheel"}
    # redis needs async-timeout only before CPython 3.11.3
    assert names - {"async-timeout"} == {"chorus-client", "redis", "msgpack"}, names
    script = textwrap.dedent(
        f"""
        import sys
        import chorus_client
        from chorus_client import Client
        assert "shared" not in sys.modules and "broker" not in sys.modules
        req = Client.from_url({stack!r}).enqueue("你好，世界！", tenant="venv", voice="jm_kumo")
        frames = list(req.frames(timeout_s=20))
        print(req.request_id, len(frames), req.status().status.value)
        """
    )
    run = subprocess.run([str(py), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    _rid, n, status = run.stdout.split()
    assert int(n) > 0 and status == "done"


def test_resume_after_a_position_hears_the_rest_exactly_once(stack: str) -> None:
    client = Client.from_url(stack)
    req = client.enqueue("你好，世界！今天天气很好。我们走吧。", tenant="acme", voice="jm_kumo")
    everything = list(client.positions(req.request_id, timeout_s=20))
    cut = len(everything) // 2
    resumed = list(client.positions(req.request_id, after=everything[cut - 1][1], timeout_s=20))
    whole = [(f.segment, f.index) for f, _ in everything]
    assert [(f.segment, f.index) for f, _ in everything[:cut] + resumed] == whole
    assert [p for _, p in resumed] == [p for _, p in everything[cut:]], "the same positions again"
