"""The tenants, stats, speak and enqueue commands, in process, against a real redis-server."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import redis

from broker.tenants import Tenants
from chorus.cli import main
from chorus.testing import read_wav
from chorus_client.keys import Keys
from shared.errors import EX_TEMPFAIL
from tests.workers.test_mixed_voices import TONE_S, _engine
from workers.signing import load_keyring
from workers.worker import Worker, WorkerConfig


def test_tenants_set_list_show_default_delete(
    redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--redis", redis_url]
    assert (
        main(["tenants", "set", "acme", "--weight", "3", "--max-queued", "2", "--lanes", "rt,interactive", *base]) == 0
    )
    policy = Tenants(r).get("acme")
    assert policy is not None and (policy.weight, policy.max_queued, policy.lanes) == (3, 2, ("rt", "interactive"))
    assert main(["tenants", "set", "acme", "--max-inflight", "4", *base]) == 0
    assert Tenants(r).get("acme") == policy.__class__(3, 2, 4, ("rt", "interactive")), "set keeps other fields"
    assert main(["tenants", "default", "--reject", *base]) == 0 and Tenants(r).default().reject
    capsys.readouterr()
    assert main(["tenants", "list", *base]) == 0
    out = capsys.readouterr().out
    assert "acme" in out and "default: rejects" in out
    assert main(["enqueue", "你好", "--tenant", "stranger", *base]) == 1
    assert "rejects unknown tenants" in capsys.readouterr().err
    assert main(["enqueue", "你好，世界！今天天气很好。", "--tenant", "acme", *base]) == 0
    assert main(["enqueue", "你好", "--tenant", "acme", *base]) == EX_TEMPFAIL
    assert "queue full for tenant 'acme'" in capsys.readouterr().err
    assert main(["tenants", "show", "acme", *base]) == 0
    assert "acme" in capsys.readouterr().out
    assert main(["tenants", "delete", "acme", *base]) == 0 and Tenants(r).get("acme") is None
    assert main(["tenants", "set", "acme", "--weight", "0", *base]) == 1
    assert "weight must be within" in capsys.readouterr().err


def test_stats_json(redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enqueue", "你好", "--tenant", "t1", "--priority", "batch", "--redis", redis_url]) == 0
    capsys.readouterr()
    assert main(["stats", "--json", "--redis", redis_url]) == 0
    (t1,) = json.loads(capsys.readouterr().out)
    assert t1["tenant"] == "t1" and t1["lanes"]["batch"]["queued"] == 1 and t1["policy"]["weight"] == 1


def test_models_keygen_sign_verify_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = tmp_path / "keyring.json"
    monkeypatch.setenv("CHORUS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHORUS_MANIFESTS", str(tmp_path / "manifests"))
    assert main(["models", "keygen", "--owner", "ci", "--key-dir", str(tmp_path / "keys"), "--keyring", str(ring)]) == 0
    (pem,) = (tmp_path / "keys").glob("*.pem")
    assert pem.stat().st_mode & 0o077 == 0, "the private key is readable by its owner only"
    kid = pem.stem
    assert kid in json.loads(ring.read_text())["keys"]
    # a toy "kokoro 1.1.0" directory in the store, signed by the new key into $CHORUS_MANIFESTS
    store = tmp_path / "home" / "models" / "kokoro"
    (store / "1.1.0").mkdir(parents=True)
    (store / "1.1.0" / "model.onnx").write_bytes(b"weights")
    (store / "1.1.0.installed.json").write_text("{}")
    assert (
        main(
            [
                "models",
                "sign",
                "kokoro",
                "--key",
                str(pem),
                "--out",
                str(tmp_path / "manifests"),
                "--keyring",
                str(ring),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["models", "verify", "kokoro", "--keyring", str(ring)]) == 0
    assert f"signed by {kid}" in capsys.readouterr().out
    (store / "1.1.0" / "model.onnx").write_bytes(b"weightz")
    assert main(["models", "verify", "kokoro", "--keyring", str(ring)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "changed" in out
    (store / "1.1.0" / "model.onnx").write_bytes(b"weights")
    assert main(["models", "revoke", kid, "--reason", "rotated", "--keyring", str(ring)]) == 0
    assert main(["models", "verify", "kokoro", "--keyring", str(ring)]) == 1
    assert "revoked (rotated)" in capsys.readouterr().out


def test_worker_refuses_to_start_below_the_rollback_floor(
    redis_url: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHORUS_HOME", str(tmp_path / "home"))
    r.hset(Keys().models_floor(), "kokoro", "1.1.0")  # what `chorus models activate kokoro 1.1.0` left
    r.hset(Keys().models_active(), "kokoro", "1.0.0")  # written by hand since
    assert main(["worker", "--redis", redis_url]) == 1
    err = capsys.readouterr().err
    assert "below the floor 1.1.0" in err and "chorus models activate kokoro" in err


def test_models_list_shows_the_floor(
    redis_url: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHORUS_HOME", str(tmp_path / "home"))
    r.hset(Keys().models_floor(), "kokoro", "1.1.0")
    r.hset(Keys().models_active(), "kokoro", "1.1.0")
    assert main(["models", "list", "--redis", redis_url]) == 0
    assert "floor kokoro 1.1.0" in capsys.readouterr().out


def test_keygen_writes_a_keyring_that_loads_whatever_the_umask(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    old = os.umask(0o002)  # group-writable files by default, as on many shared hosts
    try:
        assert main(["models", "keygen", "--key-dir", str(tmp_path / "keys"), "--keyring", str(ring)]) == 0
    finally:
        os.umask(old)
    assert ring.stat().st_mode & 0o777 == 0o644
    assert load_keyring(ring).keys


def test_speak_and_enqueue_pick_each_segments_voice_by_its_language(
    redis_url: str, r: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --voice: Mandarin segments get the Mandarin default, English ones the English default (a
    22,050 Hz voice, resampled by the worker into the 24,000 Hz request); --voice reads everything."""
    worker = Worker(r, _engine(), config=WorkerConfig(name="cli-mixed", idle_wait_s=0.1))
    worker.heartbeat(force=True)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        out = tmp_path / "mixed.wav"
        base = ["-o", str(out), "--redis", redis_url, "--timeout", "20"]
        assert main(["speak", "你好。Hello world. 再见。", *base]) == 0
        printed = capsys.readouterr().out
        assert "voices          zm_yunxi, en_joe, zm_yunxi" in printed, printed
        samples, rate = read_wav(out)
        assert rate == 24000 and abs(len(samples) / rate - 3 * TONE_S) < 0.03
        assert main(["speak", "Good morning.", *base]) == 0
        assert "voices          en_joe\n" in capsys.readouterr().out
        assert read_wav(out)[1] == 22050, "an English request is at the English voice's rate"
        assert main(["speak", "你好。Hello world.", "--voice", "zm_yunxi", *base]) == 0
        assert "voices          zm_yunxi x2\n" in capsys.readouterr().out
        assert main(["enqueue", "Hello there.", "--tenant", "cli", "--redis", redis_url]) == 0
        rid = capsys.readouterr().out.strip()
        assert r.hget(Keys().for_request(rid).request(rid), "voice") == b"en_joe"
    finally:
        worker.stop()
        thread.join(timeout=30)
