"""Signed manifests: one test per attack, each refused with the right reason and file or key named."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import redis

from models.catalog import ModelSpec
from shared.errors import ModelIntegrityError
from tests.helpers import Signer
from workers.activation import Activation
from workers.model_store import ModelStore
from workers.signing import (
    FileEntry,
    Keyring,
    Manifest,
    compare_version,
    key_id,
    load_keyring,
    manifest_of_dir,
    new_private_key,
    sign_manifest,
    verify_envelope,
)

FILES = {"model.onnx": b"\x08" * 4096, "vocab.json": b'{"a": 1}', "voices/jm_kumo.bin": b"\x01\x02" * 100}


def _spec(version: str = "1.0.0", model: str = "toy") -> ModelSpec:
    return ModelSpec(
        id=model,
        version=version,
        title=model,
        family="kokoro",
        sample_rate=24000,
        languages=("zh",),
        license="MIT",
        max_tokens=510,
        sources=(),
        checks={},
        voices=(),
    )


def _install(store: ModelStore, spec: ModelSpec, files: dict[str, bytes] = FILES) -> Path:
    root = store.path(spec)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    store.record_path(spec).write_text(json.dumps({"id": spec.id, "version": spec.version}))
    return root


@pytest.fixture()
def signer(tmp_path: Path) -> Signer:
    return Signer.make(tmp_path / "trust")


@pytest.fixture()
def store(signer: Signer, tmp_path: Path) -> ModelStore:
    s = signer.store(tmp_path / "store")
    _install(s, _spec())
    signer.sign(s, _spec())
    return s


def _refused(store: ModelStore, spec: ModelSpec | None = None, floor: str | None = None) -> ModelIntegrityError:
    with pytest.raises(ModelIntegrityError) as info:
        store.load(spec or _spec(), floor=floor)
    return info.value


def test_a_signed_model_loads_and_returns_the_bytes_it_hashed(store: ModelStore) -> None:
    loaded = store.load(_spec())
    assert loaded.files == FILES


def test_tampered_byte(store: ModelStore) -> None:
    path = store.path(_spec()) / "model.onnx"
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0x01
    path.write_bytes(bytes(blob))
    err = _refused(store)
    assert err.path.endswith("model.onnx") and "changed" in err.reason


def test_extra_file(store: ModelStore) -> None:
    (store.path(_spec()) / "voices" / "extra.bin").write_bytes(b"x")
    err = _refused(store)
    assert err.path.endswith("voices/extra.bin") and "extra file" in err.reason


def test_missing_file(store: ModelStore) -> None:
    (store.path(_spec()) / "vocab.json").unlink()
    err = _refused(store)
    assert err.path.endswith("vocab.json") and "missing" in err.reason


def test_symlink(store: ModelStore, tmp_path: Path) -> None:
    path = store.path(_spec()) / "vocab.json"
    (tmp_path / "same.json").write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(tmp_path / "same.json")  # same bytes, but a link
    err = _refused(store)
    assert err.path.endswith("vocab.json") and "symlink" in err.reason


def test_symlinked_directory(store: ModelStore, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", store.path(_spec()) / "more")
    err = _refused(store)
    assert err.path.endswith("more") and "symlink" in err.reason


def test_a_file_swapped_for_a_fifo_after_the_walk_is_refused_without_blocking(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk saw regular files; then vocab.json became a FIFO (a race with whoever can write the
    store). The read opens it non-blocking, checks the descriptor itself, and refuses it unread;
    a plain open() would block until someone writes to the FIFO."""
    import threading

    import workers.signing as signing

    walked = signing._walk(store.path(_spec()))
    path = store.path(_spec()) / "vocab.json"
    path.unlink()
    os.mkfifo(path)
    monkeypatch.setattr(signing, "_walk", lambda root: walked)
    result: list[BaseException] = []
    loader = threading.Thread(target=lambda: result.append(_refused(store)), daemon=True)
    loader.start()
    loader.join(5)
    assert not loader.is_alive(), "the read blocked on the FIFO"
    err = result[0]
    assert isinstance(err, ModelIntegrityError) and err.path.endswith("vocab.json")
    assert "not a regular file" in err.reason


def test_a_file_swapped_for_a_symlink_after_the_walk_is_refused(
    store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workers.signing as signing

    walked = signing._walk(store.path(_spec()))
    path = store.path(_spec()) / "vocab.json"
    (tmp_path / "same.json").write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(tmp_path / "same.json")
    monkeypatch.setattr(signing, "_walk", lambda root: walked)
    err = _refused(store)
    assert err.path.endswith("vocab.json") and "symlink" in err.reason


@pytest.mark.parametrize("evil", ["../outside.bin", "/etc/passwd", "voices/../../x", "./model.onnx", "a\\b"])
def test_path_traversal_inside_the_manifest(signer: Signer, store: ModelStore, evil: str) -> None:
    good = manifest_of_dir("toy", "1.0.0", store.path(_spec()))
    files = tuple(sorted([*good.files, FileEntry(evil, 1, "0" * 64)], key=lambda f: f.path))
    signer.write(Manifest("toy", "1.0.0", files))  # validly signed, but names a path outside
    err = _refused(store)
    assert err.path == evil and ("escapes" in err.reason or "absolute" in err.reason or "backslash" in err.reason)


def test_wrong_key(signer: Signer, store: ModelStore) -> None:
    stranger = new_private_key()
    signer.sign(store, _spec(), key=stranger)
    err = _refused(store)
    assert "not in the trusted keyring" in err.reason and err.path.endswith("toy-1.0.0.dsse.json")


def test_key_id_of_a_trusted_key_with_another_keys_signature(signer: Signer, store: ModelStore) -> None:
    path = signer.manifests / "toy-1.0.0.dsse.json"
    env = json.loads(path.read_text())
    trusted_id = env["signatures"][0]["keyid"]
    signer.sign(store, _spec(), key=new_private_key())
    forged = json.loads(path.read_text())
    forged["signatures"][0]["keyid"] = trusted_id  # claims the trusted key; the keyring's key decides
    path.write_text(json.dumps(forged))
    assert f"does not verify under key {trusted_id}" in _refused(store).reason


def test_revoked_key(signer: Signer, store: ModelStore) -> None:
    (kid,) = signer.keyring.keys
    signer.keyring.revoked[kid] = "laptop stolen"
    err = _refused(store)
    assert f"key {kid} is revoked (laptop stolen)" in err.reason


def test_rollback(signer: Signer, store: ModelStore) -> None:
    err = _refused(store, floor="1.1.0")
    assert "rollback" in err.reason and "1.1.0" in err.reason
    assert store.load(_spec(), floor="1.0.0").files == FILES, "the active version itself loads"


def test_unsigned(signer: Signer, store: ModelStore) -> None:
    (signer.manifests / "toy-1.0.0.dsse.json").unlink()
    assert "unsigned" in _refused(store).reason


def test_envelope_without_signatures(signer: Signer, store: ModelStore) -> None:
    path = signer.manifests / "toy-1.0.0.dsse.json"
    env = json.loads(path.read_text())
    env["signatures"] = []
    path.write_text(json.dumps(env))
    assert "unsigned" in _refused(store).reason


def test_payload_changed_after_signing(signer: Signer, store: ModelStore) -> None:
    path = signer.manifests / "toy-1.0.0.dsse.json"
    env = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["files"][0]["sha256"] = "0" * 64
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(env))
    assert "does not verify" in _refused(store).reason


def test_manifest_of_another_model_or_version(signer: Signer, store: ModelStore) -> None:
    env = (signer.manifests / "toy-1.0.0.dsse.json").read_text()
    _install(store, _spec("2.0.0"))
    (signer.manifests / "toy-2.0.0.dsse.json").write_text(env)  # 1.0.0's manifest under 2.0.0's name
    err = _refused(store, _spec("2.0.0"))
    assert "signed for toy 1.0.0, not toy 2.0.0" in err.reason


def test_subject_digest_must_cover_the_file_list(signer: Signer, store: ModelStore) -> None:
    m = manifest_of_dir("toy", "1.0.0", store.path(_spec()))

    class Lying(Manifest):
        def resources_digest(self) -> str:
            return "f" * 64

    signer.write(Lying(m.model, m.version, m.files))
    assert "subject digest" in _refused(store).reason


def test_keyring_round_trip_and_key_id_check(signer: Signer, tmp_path: Path) -> None:
    text = signer.keyring.to_json()
    again = Keyring.from_json(text)
    assert set(again.keys) == set(signer.keyring.keys)
    raw = json.loads(text)
    kid = next(iter(raw["keys"]))
    raw["keys"]["0" * 16] = raw["keys"].pop(kid)
    with pytest.raises(ModelIntegrityError, match="does not match"):
        Keyring.from_json(json.dumps(raw))


def test_versions_compare_numerically() -> None:
    assert compare_version("1.10.0", "1.9.9") == 1
    assert compare_version("1.0", "1.0.0") == 0
    assert compare_version("0.9.1", "1.0.0") == -1
    with pytest.raises(ModelIntegrityError):
        compare_version("1.0-beta", "1.0")


def test_activation_verifies_and_refuses_rollback(signer: Signer, store: ModelStore, r: redis.Redis) -> None:
    act = Activation(r)
    assert act.activate(_spec(), store) is None
    _install(store, _spec("1.1.0"))
    signer.sign(store, _spec("1.1.0"))
    assert act.activate(_spec("1.1.0"), store) == "1.0.0"
    with pytest.raises(ModelIntegrityError, match="rollback"):
        act.activate(_spec(), store)
    _install(store, _spec("1.2.0"))  # installed but never signed
    with pytest.raises(ModelIntegrityError, match="unsigned"):
        act.activate(_spec("1.2.0"), store)
    assert act.active() == {"toy": "1.1.0"}


# -- the keyring file: refused when others could have written it -----------------------------


def _ring_file(signer: Signer, directory: Path, mode: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "keyring.json"
    path.write_text(signer.keyring.to_json())
    path.chmod(mode)
    return path


def test_keyring_of_mode_644_loads(signer: Signer, tmp_path: Path) -> None:
    path = _ring_file(signer, tmp_path / "ring", 0o644)
    assert set(load_keyring(path).keys) == set(signer.keyring.keys)


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_keyring_writable_by_group_or_others_is_refused(signer: Signer, tmp_path: Path, mode: int) -> None:
    path = _ring_file(signer, tmp_path / "ring", mode)
    with pytest.raises(ModelIntegrityError) as info:
        load_keyring(path)
    assert info.value.path == str(path) and f"mode {mode:04o}" in info.value.reason


def test_keyring_through_the_environment_is_checked_too(
    signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _ring_file(signer, tmp_path / "ring", 0o666)
    monkeypatch.setenv("CHORUS_KEYRING", str(path))
    with pytest.raises(ModelIntegrityError, match="0666"):
        load_keyring()


def test_keyring_in_a_world_writable_directory_without_sticky_bit_is_refused(signer: Signer, tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    path = _ring_file(signer, directory, 0o644)
    directory.chmod(0o777)  # anyone may rename another file over it
    with pytest.raises(ModelIntegrityError) as info:
        load_keyring(path)
    assert info.value.path == str(path) and "0777" in info.value.reason
    directory.chmod(0o1777)  # sticky, like /tmp: only the owner may replace it
    assert set(load_keyring(path).keys) == set(signer.keyring.keys)


def test_the_shipped_keyring_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHORUS_KEYRING", raising=False)
    ring = load_keyring()  # the repository's models/keys/keyring.json, as checked out (0644)
    assert ring.source.endswith("models/keys/keyring.json") and ring.keys


# -- the key reported is the key whose signature verified --------------------------------------


def _two_signatures(signer: Signer, store: ModelStore, first: dict[str, str]) -> Path:
    """The manifest of toy 1.0.0 with ``first`` before the signer's own, valid signature."""
    path = signer.manifests / "toy-1.0.0.dsse.json"
    env = json.loads(path.read_text())
    env["signatures"].insert(0, first)
    path.write_text(json.dumps(env))
    return path


def test_signer_reported_is_the_key_that_verified_not_a_forged_first_claim(signer: Signer, store: ModelStore) -> None:
    other = new_private_key()
    other_id = signer.keyring.add(other.public_key(), "other")  # trusted, but did not sign this
    bogus = base64.b64encode(other.sign(b"something else")).decode()
    _two_signatures(signer, store, {"keyid": other_id, "sig": bogus})
    assert store.load(_spec()).signed_by == key_id(signer.key.public_key()) != other_id


def test_signer_reported_is_not_a_revoked_first_signature(signer: Signer, store: ModelStore) -> None:
    old = new_private_key()
    old_id = signer.keyring.add(old.public_key(), "old")
    signer.keyring.revoked[old_id] = "rotated"  # still listed under keys, but refused
    genuine = sign_manifest(manifest_of_dir("toy", "1.0.0", store.path(_spec())), old)["signatures"][0]
    _two_signatures(signer, store, genuine)  # the old key's own, valid signature comes first
    assert store.load(_spec()).signed_by == key_id(signer.key.public_key())


def test_verify_envelope_returns_the_verifying_key_id(signer: Signer, store: ModelStore) -> None:
    stranger = new_private_key()
    path = _two_signatures(signer, store, {"keyid": key_id(stranger.public_key()), "sig": "AAAA"})
    manifest, kid = verify_envelope(
        json.loads(path.read_text()), signer.keyring, model="toy", version="1.0.0", source=str(path)
    )
    assert kid == key_id(signer.key.public_key()) and manifest.version == "1.0.0"
