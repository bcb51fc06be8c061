"""The ``chorus models`` commands: install, list, verify, keygen, sign, revoke, activate."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from models.catalog import load_catalog
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.errors import ChorusError, ConfigError, ModelError
from workers.activation import Activation
from workers.model_store import ModelStore, manifest_name
from workers.signing import (
    Keyring,
    key_id,
    load_keyring,
    manifest_of_dir,
    new_private_key,
    private_key_from_pem,
    sign_manifest,
)

__all__ = ["run"]


def _write_keyring(path: Path, ring: Keyring) -> None:
    """Write ``ring`` to ``path`` with mode 644 whatever the umask: a group-writable keyring is refused on load."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o644)
        f.write(ring.to_json())


def _store(keyring_path: Path) -> ModelStore:
    return ModelStore(keyring=load_keyring(keyring_path))


def run(args: argparse.Namespace, keyring_path: Path) -> int:
    action = args.action
    if action == "keygen":
        return _keygen(args, keyring_path)
    if action == "revoke":
        ring = load_keyring(keyring_path)
        if args.keyid not in ring.keys:
            raise ConfigError(f"key {args.keyid} is not in {keyring_path}")
        ring.revoked[args.keyid] = args.reason
        _write_keyring(keyring_path, ring)
        print(f"revoked {args.keyid} in {keyring_path}: manifests it signed are refused from now on")
        return 0
    cat, store = load_catalog(), _store(keyring_path)
    if action == "install":
        for model_id in args.ids or list(cat.models):
            spec = cat.spec(model_id)
            path = store.install(spec, force=args.force)
            loaded = store.load(spec)
            print(
                f"{model_id} {spec.version}: installed in {path}; verified in {loaded.verify_s:.2f}s, "
                f"signed by {loaded.signed_by}"
            )
        return 0
    if action == "verify":
        failed = 0
        for model_id in args.ids or [m for m, spec in cat.models.items() if store.is_installed(spec)]:
            spec = cat.spec(model_id)
            try:
                loaded = store.load(spec)
            except ModelError as exc:
                failed += 1
                print(f"{model_id} {spec.version}: REFUSED: {exc}")
                continue
            size = sum(len(b) for b in loaded.files.values())
            print(
                f"{model_id} {spec.version}: ok, {len(loaded.files)} files, {size:,} bytes, "
                f"signed by {loaded.signed_by}, verified in {loaded.verify_s:.2f}s"
            )
        return 1 if failed else 0
    if action == "sign":
        spec = cat.spec(args.id, args.version)
        if not store.is_installed(spec):
            raise ChorusError(f"{spec.id} {spec.version} is not installed; `chorus models install {spec.id}` first")
        key = private_key_from_pem(args.key.read_bytes())
        manifest = manifest_of_dir(spec.id, spec.version, store.path(spec))
        out = args.out or store.manifest_dirs[-1]
        out.mkdir(parents=True, exist_ok=True)
        target = out / manifest_name(spec.id, spec.version)
        target.write_text(json.dumps(sign_manifest(manifest, key), indent=1) + "\n", encoding="utf-8")
        kid = key_id(key.public_key())
        trusted = "" if kid in store.keyring.keys else f" (key {kid} is NOT in {keyring_path}: workers will refuse it)"
        print(f"signed {spec.id} {spec.version}: {len(manifest.files)} files, key {kid} -> {target}{trusted}")
        return 0
    if action == "activate":
        spec = cat.spec(args.id, args.version)
        settings = RedisSettings.from_env(args.redis)
        if settings is None:
            raise ConfigError("activate needs the deployment's Redis: --redis or CHORUS_REDIS_URL")
        act = Activation(sync_client(settings))
        previous = act.activate(spec, store)
        print(f"{spec.id}: {previous or 'nothing'} -> {spec.version} active; workers load it between segments")
        return 0
    return _list(args, store)


def _list(args: argparse.Namespace, store: ModelStore) -> int:
    cat = load_catalog()
    settings = RedisSettings.from_env(getattr(args, "redis", None))
    act = Activation(sync_client(settings)) if settings is not None else None
    active = act.active() if act else {}
    floors = act.floors() if act else {}
    for spec in cat.all_specs():
        if not store.is_installed(spec):
            state = "not installed"
        else:
            try:
                state = f"verified, signed by {store.load(spec).signed_by}"
            except ModelError as exc:
                state = f"REFUSED: {exc}"
        mark = " [active]" if active.get(spec.id) == spec.version else ""
        print(f"{spec.id:8} {spec.version:8} {spec.title}: {state}{mark}")
    for model_id, floor in sorted(floors.items()):
        print(f"  floor {model_id} {floor}: activation refuses older versions; workers refuse to start below it")
    if act is not None:
        for worker, info in sorted(act.worker_models().items()):
            loaded = ", ".join(f"{m} {v}" for m, v in sorted(info.get("models", {}).items()))
            errors = "; ".join(f"{m}: {e}" for m, e in sorted(info.get("model_errors", {}).items()))
            print(f"  worker {worker}: {loaded or '-'}" + (f"  FAILED {errors}" if errors else ""))
    return 0


def _keygen(args: argparse.Namespace, keyring_path: Path) -> int:
    key = new_private_key()
    kid = key_id(key.public_key())
    key_dir = args.key_dir or Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "chorus" / "keys"
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / f"{kid}.pem"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    ring = load_keyring(keyring_path) if keyring_path.exists() else Keyring(source=str(keyring_path))
    ring.add(key.public_key(), args.owner)
    keyring_path.parent.mkdir(parents=True, exist_ok=True)
    _write_keyring(keyring_path, ring)
    print(f"key {kid}: private key {path} (mode 600; never commit it), public key added to {keyring_path}")
    print(kid, file=sys.stderr)
    return 0
