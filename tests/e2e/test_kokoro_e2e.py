"""End to end with the real Kokoro model on a real redis-server: Mandarin audio through the queue."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from chorus.speak import embedded_stack, speak
from chorus.testing import read_wav
from workers.engine import Engine, load_engine

TEXT = "你好，世界！今天天气很好，我们一起去公园散步吧。"
CJK_CHARS = 23


@pytest.fixture(scope="module")
def kokoro() -> Engine:
    # No skip: a missing model fails here with the command that installs it (bin/test runs it).
    return load_engine(threads=2, model_ids=["kokoro"])


def _check_speech(path: Path) -> float:
    samples, sr = read_wav(path)
    seconds = len(samples) / sr
    assert sr == 24000
    assert 0.12 * CJK_CHARS < seconds < 0.6 * CJK_CHARS, f"implausible duration {seconds:.2f}s"
    x = samples.astype(np.float32) / 32768
    assert np.sqrt(np.mean(x**2)) > 0.02, "audio is (nearly) silent"
    assert np.abs(samples.astype(np.int32)).max() < 32767, "clipped samples"
    voiced = np.mean(np.abs(x) > 0.05)
    assert 0.15 < voiced, "too little speech energy"
    return seconds


def test_mandarin_through_the_queue(kokoro: Engine, tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    with embedded_stack(kokoro) as client:
        res = speak(client, TEXT, out)
    assert res.segments == 2
    assert 0 < res.first_audio_s < res.total_s
    seconds = _check_speech(out)
    assert abs(seconds - res.audio_s) < 0.01


def _chorus(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chorus", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_producer_worker_and_listener_as_separate_processes(redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "CHORUS_REDIS_URL": redis_url}
    redis.Redis.from_url(redis_url).flushall()
    worker = subprocess.Popen(
        [sys.executable, "-m", "chorus", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        enq = _chorus("enqueue", "--tenant", "acme", TEXT, env=env)
        assert enq.returncode == 0, enq.stderr
        rid = enq.stdout.strip()
        out = tmp_path / "out.wav"
        t0 = time.monotonic()
        lis = _chorus("listen", rid, "-o", str(out), "--timeout", "90", env=env)
        assert lis.returncode == 0, lis.stderr + (
            worker.stderr.read() if worker.poll() is not None and worker.stderr else ""
        )
        assert time.monotonic() - t0 < 90
        _check_speech(out)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if worker.stderr:
            worker.stderr.close()
    assert worker.returncode == 0, "SIGTERM stops the worker cleanly"


def test_cli_errors_are_clear(redis_url: str) -> None:
    env = {**os.environ, "CHORUS_REDIS_URL": redis_url}
    bad_voice = _chorus("enqueue", "--tenant", "acme", "--voice", "nobody", "你好", env=env)
    assert bad_voice.returncode == 1 and "unknown voice 'nobody'" in bad_voice.stderr
    empty = _chorus("enqueue", "--tenant", "acme", "  ", env=env)
    assert empty.returncode == 1 and "nothing to speak" in empty.stderr
    unknown = _chorus("listen", "s0.AAAAAAAAAAAAAAAAAAAAAA", "--timeout", "1", env=env)
    assert unknown.returncode == 1 and "no such request" in unknown.stderr
    invalid = subprocess.run(
        [sys.executable, "-m", "chorus", "enqueue", "--tenant", "a", "-"],
        input=b"\xff\xfe",
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert invalid.returncode == 1 and b"not valid UTF-8" in invalid.stderr
