"""Hot activation on a real redis-server: running workers load a newly activated, verified version
between segments; a version that fails verification leaves the old one serving and is reported."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from broker.producer import Producer
from chorus_client.keys import Keys
from gateway.subscriber import Subscriber
from models.catalog import Catalog, ModelSpec, VoiceSpec
from shared.errors import ModelIntegrityError
from tests.helpers import TINY_VOICES, Signer, tiny_model_files
from workers.activation import Activation
from workers.engine import load_engine
from workers.model_store import ModelStore
from workers.worker import Worker, WorkerConfig

GAINS = {"1.0.0": 0.5, "1.1.0": 0.25, "1.2.0": 0.125}


def _spec(version: str) -> ModelSpec:
    voices = tuple(VoiceSpec(v, "tiny", "zh", "x", "") for v in TINY_VOICES)
    return ModelSpec(
        id="tiny",
        version=version,
        title="tiny",
        family="kokoro",
        sample_rate=24000,
        languages=("zh",),
        license="MIT",
        max_tokens=510,
        sources=(),
        checks={},
        voices=voices,
    )


def _install(store: ModelStore, version: str) -> None:
    root = store.path(_spec(version))
    root.mkdir(parents=True)
    for name, data in tiny_model_files(GAINS[version]).items():
        (root / name).write_bytes(data)
    store.record_path(_spec(version)).write_text("{}")


@pytest.fixture()
def deployment(tmp_path: Path, r: redis.Redis) -> Iterator[tuple[Worker, ModelStore, Signer, Catalog]]:
    signer = Signer.make(tmp_path / "trust")
    store = signer.store(tmp_path / "store")
    for version in GAINS:
        _install(store, version)
        signer.sign(store, _spec(version))
    specs = {(s.id, s.version): s for s in map(_spec, GAINS)}
    voices = {v.name: v for v in _spec("1.0.0").voices}
    catalog = Catalog(models={"tiny": _spec("1.2.0")}, voices=voices, default_voices={"zh": "jm_kumo"}, versions=specs)
    Activation(r).activate(_spec("1.0.0"), store)
    engine = load_engine(store=store, catalog=catalog, model_ids=["tiny"], versions={"tiny": "1.0.0"}, threads=1)
    name = f"hot-{uuid.uuid4().hex[:8]}"
    worker = Worker(r, engine, config=WorkerConfig(name=name, heartbeat_s=0.05, idle_wait_s=0.05))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield worker, store, signer, catalog
    worker.stop()
    thread.join(10)
    assert not thread.is_alive(), "the worker stops when asked"


def _peak(r: redis.Redis, catalog: Catalog) -> float:
    rid = Producer(r, catalog=catalog).enqueue("你好", tenant="t", voice="jm_kumo").request_id
    pcm = b"".join(f.pcm for f in Subscriber(r).frames(rid, timeout_s=20))
    return float(np.abs(np.frombuffer(pcm, dtype="<i2")).max()) / 32767


def _info(r: redis.Redis, worker: Worker) -> dict:  # type: ignore[type-arg]
    raw = r.hget(Keys().worker_info(), worker.config.name)
    return json.loads(raw) if raw else {}


def _wait(cond: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_activated_version_is_loaded_between_segments(deployment: tuple, r: redis.Redis) -> None:  # type: ignore[type-arg]
    worker, store, _signer, catalog = deployment
    assert abs(_peak(r, catalog) - 0.5) < 0.02
    Activation(r).activate(_spec("1.1.0"), store)
    _wait(lambda: _info(r, worker).get("models") == {"tiny": "1.1.0"})
    assert abs(_peak(r, catalog) - 0.25) < 0.02, "served by the new version"
    assert worker.model_failures == 0


def test_a_version_failing_verification_leaves_the_old_one_serving(deployment: tuple, r: redis.Redis) -> None:  # type: ignore[type-arg]
    worker, store, _signer, catalog = deployment
    # activated elsewhere (verified there), but this worker's copy was tampered with
    path = store.path(_spec("1.2.0")) / "model.onnx"
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    r.hset(Keys().models_active(), "tiny", "1.2.0")
    _wait(lambda: "tiny" in _info(r, worker).get("model_errors", {}))
    info = _info(r, worker)
    assert info["models"] == {"tiny": "1.0.0"} and info["model_failures"] == 1
    assert "1.2.0" in info["model_errors"]["tiny"] and "changed" in info["model_errors"]["tiny"]
    assert abs(_peak(r, catalog) - 0.5) < 0.02, "the old version still serves"


def test_workers_refuse_a_rollback_set_behind_activates_back(deployment: tuple, r: redis.Redis) -> None:  # type: ignore[type-arg]
    worker, store, _signer, catalog = deployment
    Activation(r).activate(_spec("1.1.0"), store)
    _wait(lambda: _info(r, worker).get("models") == {"tiny": "1.1.0"})
    with pytest.raises(ModelIntegrityError, match="rollback"):
        Activation(r).activate(_spec("1.0.0"), store)
    r.hset(Keys().models_active(), "tiny", "1.0.0")  # written by hand, past the CLI
    _wait(lambda: "tiny" in _info(r, worker).get("model_errors", {}))
    assert "rollback" in _info(r, worker)["model_errors"]["tiny"]
    assert abs(_peak(r, catalog) - 0.25) < 0.02


# -- the rollback floor lives in Redis, not in running workers' memory ---------------------------


@pytest.fixture()
def signed_store(tmp_path: Path) -> ModelStore:
    """Every version of GAINS installed and signed; no worker running."""
    signer = Signer.make(tmp_path / "trust")
    store = signer.store(tmp_path / "store")
    for version in GAINS:
        _install(store, version)
        signer.sign(store, _spec(version))
    return store


def test_activate_raises_the_floor_in_the_same_hash_slot(signed_store: ModelStore, r: redis.Redis) -> None:
    act = Activation(r)
    act.activate(_spec("1.0.0"), signed_store)
    assert r.hgetall(Keys().models_floor()) == {b"tiny": b"1.0.0"}
    act.activate(_spec("1.1.0"), signed_store)
    assert act.floors() == {"tiny": "1.1.0"} and act.serving() == {"tiny": "1.1.0"}
    # one MULTI writes both: they must hash to the same cluster slot
    assert "{models}" in Keys().models_active() and "{models}" in Keys().models_floor()


def test_a_hand_written_rollback_stops_a_starting_worker(signed_store: ModelStore, r: redis.Redis) -> None:
    act = Activation(r)
    act.activate(_spec("1.1.0"), signed_store)
    r.hset(Keys().models_active(), "tiny", "1.0.0")  # past the CLI: a fresh worker would otherwise serve it
    assert act.active() == {"tiny": "1.0.0"}, "active() reports the hash as it is"
    with pytest.raises(ModelIntegrityError) as info:
        act.serving()
    msg = str(info.value)
    assert "rollback" in msg and "1.0.0" in msg and "floor 1.1.0" in msg and "chorus models activate tiny" in msg


def test_activate_refuses_below_the_floor_even_when_the_active_version_is_lower(
    signed_store: ModelStore, r: redis.Redis
) -> None:
    act = Activation(r)
    act.activate(_spec("1.2.0"), signed_store)
    r.hset(Keys().models_active(), "tiny", "1.0.0")
    with pytest.raises(ModelIntegrityError, match=r"rollback: 1\.2\.0 is the floor"):
        act.activate(_spec("1.1.0"), signed_store)  # above the active 1.0.0, below the floor
    assert act.activate(_spec("1.2.0"), signed_store) == "1.0.0", "activating the floor itself repairs it"
    assert act.serving() == {"tiny": "1.2.0"} and act.floors() == {"tiny": "1.2.0"}


def test_a_deployment_from_before_floors_uses_its_active_version(signed_store: ModelStore, r: redis.Redis) -> None:
    r.hset(Keys().models_active(), "tiny", "1.1.0")  # as activate wrote it before the floor hash existed
    act = Activation(r)
    assert act.serving() == {"tiny": "1.1.0"}
    with pytest.raises(ModelIntegrityError, match="rollback"):
        act.activate(_spec("1.0.0"), signed_store)
    assert act.activate(_spec("1.2.0"), signed_store) == "1.1.0"
    assert act.floors() == {"tiny": "1.2.0"}


def test_a_floor_without_an_active_version_stops_a_starting_worker(signed_store: ModelStore, r: redis.Redis) -> None:
    act = Activation(r)
    act.activate(_spec("1.1.0"), signed_store)
    r.hdel(Keys().models_active(), "tiny")  # the worker would fall back to the catalog's version, unchecked
    with pytest.raises(ModelIntegrityError, match=r"floor is 1\.1\.0"):
        act.serving()
