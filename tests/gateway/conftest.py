"""Fixtures of the gateway tests: the gateway as a real uvicorn process, real Redis, real worker processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from gateway.auth import ApiKeys
from tests.helpers import run_sleep_worker

METRICS_TOKEN = "test-metrics-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(redis_server: object) -> Iterator[dict[str, object]]:
    url = redis_server.url  # type: ignore[attr-defined]
    r = redis.Redis.from_url(url)
    r.flushall()
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=run_sleep_worker, args=(url, f"gw{i}", 6, 0.02, 2.0), daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    port = _free_port()
    env = {**os.environ, "CHORUS_REDIS_URL": url, "CHORUS_METRICS_TOKEN": METRICS_TOKEN}
    log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads would block the gateway once full
    proc = subprocess.Popen([sys.executable, "-m", "chorus", "gateway", "--port", str(port)], env=env,
                            stderr=log, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, log.seek(0) or log.read()
        assert time.monotonic() < deadline, "gateway or workers did not get ready"
        time.sleep(0.1)
    api = ApiKeys(r)
    key_a, _ = api.add("alice", "tests")
    key_b, _ = api.add("bob", "tests")
    yield {"base": base, "a": key_a, "b": key_b, "r": r, "metrics_token": METRICS_TOKEN}
    proc.terminate()
    proc.wait(10)
    log.close()
    for w in workers:
        w.kill()
        w.join(10)
    r.close()
