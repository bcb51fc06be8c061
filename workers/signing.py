"""Signed model manifests: what a model version is made of, signed with Ed25519, checked against a pinned keyring.

A manifest lists every file of one model version (relative POSIX path, size,
SHA-256), sorted by path, with the model id and version. It travels as an
in-toto v1 Statement (in the spirit of OpenSSF model signing): the subject is
``<id>@<version>`` whose digest is the SHA-256 of the canonical JSON of the
sorted file list, and the predicate carries the list itself. The statement is
signed as a DSSE envelope (``DSSEv1`` pre-authentication encoding) with
Ed25519 through ``cryptography``.

Trust comes only from the keyring (``models/keys/keyring.json``): public keys by
key id, and revoked key ids with the reason. A signature is checked under the
key the keyring holds for the envelope's key id, never under a key carried by
the envelope. Every refusal is a :class:`ModelIntegrityError` naming the file
or key and the reason.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import ModelIntegrityError

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "FileEntry",
    "Keyring",
    "Manifest",
    "check_dir",
    "check_relative_path",
    "compare_version",
    "key_id",
    "load_keyring",
    "manifest_of_dir",
    "new_private_key",
    "private_key_from_pem",
    "read_keyring_file",
    "sign_manifest",
    "verify_envelope",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://chorus.dev/model-manifest/v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise ModelIntegrityError(what, "not valid base64") from None


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the signature covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_id(public: Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelIntegrityError("signing key", "not an Ed25519 private key")
    return key


def compare_version(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is below, equal to or above ``b`` (dotted integers)."""

    def parts(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in v.split("."))
        except ValueError:
            raise ModelIntegrityError(v, "a model version is dotted integers, like 1.0.0") from None

    pa, pb = parts(a), parts(b)
    width = max(len(pa), len(pb))
    pa, pb = pa + (0,) * (width - len(pa)), pb + (0,) * (width - len(pb))
    return (pa > pb) - (pa < pb)


def check_relative_path(path: str) -> str:
    """A manifest path must be relative, POSIX, normalised and stay inside the model directory."""
    if not isinstance(path, str) or not path:
        raise ModelIntegrityError(repr(path), "empty or non-text path in the manifest")
    if "\\" in path or "\x00" in path:
        raise ModelIntegrityError(path, "backslash or NUL in a manifest path")
    p = PurePosixPath(path)
    if p.is_absolute() or path.startswith("/"):
        raise ModelIntegrityError(path, "absolute path in the manifest")
    if any(part in ("..", ".", "") for part in path.split("/")):
        raise ModelIntegrityError(path, "path escapes or is not normalised ('..' or '.')")
    return path


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    model: str
    version: str
    files: tuple[FileEntry, ...]
    """Sorted by path."""

    def resources_digest(self) -> str:
        return hashlib.sha256(_canonical([f.to_dict() for f in self.files])).hexdigest()

    def statement(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": f"{self.model}@{self.version}", "digest": {"sha256": self.resources_digest()}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"model": self.model, "version": self.version, "files": [f.to_dict() for f in self.files]},
        }


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """Regular files and symlinks under ``root`` (relative POSIX paths); symlinks are never followed."""
    files: list[str] = []
    links: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                links.append(rel)
            elif stat.S_ISREG(mode):
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                links.append(rel)  # device, socket, fifo: never part of a model
    return sorted(files), sorted(links)


def manifest_of_dir(model: str, version: str, root: Path) -> Manifest:
    """Build the manifest of a model directory as it is on disk (what ``chorus models sign`` signs)."""
    files, links = _walk(root)
    if links:
        raise ModelIntegrityError(str(root / links[0]), "symlink or special file in the model directory")
    entries = []
    for rel in files:
        data = read_regular(root / rel)
        entries.append(FileEntry(check_relative_path(rel), len(data), hashlib.sha256(data).hexdigest()))
    if not entries:
        raise ModelIntegrityError(str(root), "no files to sign")
    return Manifest(model, version, tuple(entries))


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> dict[str, Any]:
    """The DSSE envelope of the manifest's statement, signed by ``key``."""
    payload = _canonical(manifest.statement())
    sig = key.sign(_pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": _b64(payload),
        "signatures": [{"keyid": key_id(key.public_key()), "sig": _b64(sig)}],
    }


@dataclass
class Keyring:
    """Trusted public keys by key id, and revoked key ids (id -> reason)."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    revoked: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    source: str = "keyring"

    def add(self, public: Ed25519PublicKey, owner: str = "") -> str:
        kid = key_id(public)
        self.keys[kid] = public
        self.owners[kid] = owner
        return kid

    def to_json(self) -> str:
        keys = {
            kid: {
                "ed25519": _b64(k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
                "owner": self.owners.get(kid, ""),
            }
            for kid, k in sorted(self.keys.items())
        }
        return json.dumps({"keys": keys, "revoked": dict(sorted(self.revoked.items()))}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "keyring") -> Keyring:
        raw = json.loads(text)
        ring = cls(source=source)
        for kid, entry in raw.get("keys", {}).items():
            public = Ed25519PublicKey.from_public_bytes(_unb64(entry["ed25519"], f"{source}: key {kid}"))
            if key_id(public) != kid:
                raise ModelIntegrityError(source, f"key id {kid} does not match its public key")
            ring.keys[kid] = public
            ring.owners[kid] = entry.get("owner", "")
        ring.revoked = {str(k): str(v) for k, v in raw.get("revoked", {}).items()}
        return ring


def load_keyring(path: Path | None = None) -> Keyring:
    """The keyring at ``path``, else ``$CHORUS_KEYRING``, else the one shipped in ``models/keys``.

    Raises :class:`ModelIntegrityError` (see :func:`read_keyring_file`) when others
    than its owner could have written it.
    """
    env = os.environ.get("CHORUS_KEYRING")
    if path is None and env:
        path = Path(env)
    if path is None:
        shipped = resources.files("models").joinpath("keys/keyring.json")
        if not isinstance(shipped, Path):  # inside a zip: no file mode to check, the archive is the trust boundary
            return Keyring.from_json(shipped.read_text(encoding="utf-8"), "models/keys/keyring.json")
        path = shipped
    return Keyring.from_json(read_keyring_file(path), str(path))


def read_keyring_file(path: Path) -> str:
    """The text of the keyring file at ``path``, refused when anyone but its owner could have changed it.

    The keyring decides which signatures are trusted, so a file that is group- or
    world-writable (``mode & 0o022``), or that lies in a world-writable directory
    without the sticky bit (anyone may replace it there), is refused with a
    :class:`ModelIntegrityError` naming the path and the mode. The mode is taken
    from the open file itself, so the file checked is the file read.
    """
    data, mode = _read_regular(path, follow=True, what="keyring")
    if stat.S_IMODE(mode) & 0o022:
        raise ModelIntegrityError(
            str(path),
            f"keyring is writable by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"`chmod go-w {path}` if its content is what you trust",
        )
    # Both the directory named and, through a symlink, the one really holding the file.
    for directory in dict.fromkeys([path.absolute().parent, path.resolve().parent]):
        dmode = directory.stat().st_mode
        if dmode & stat.S_IWOTH and not dmode & stat.S_ISVTX:
            raise ModelIntegrityError(
                str(path),
                f"keyring lies in {directory}, writable by anyone without the sticky "
                f"bit (mode {stat.S_IMODE(dmode):04o}): anyone could replace it",
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelIntegrityError(str(path), "keyring is not UTF-8 text") from None


def verify_envelope(envelope: Any, keyring: Keyring, *, model: str, version: str, source: str) -> tuple[Manifest, str]:
    """Check the envelope's signatures under the keyring; return the manifest it signs and the key id that verified.

    Signatures are tried in order and the first that verifies under a trusted,
    unrevoked key decides; its key id is the one returned (never merely the first
    trusted id the envelope names). ``source`` names the manifest file in errors.
    The signed model id and version must be the ones asked for. Raises
    :class:`ModelIntegrityError` with every signature's reason when none verifies.
    """
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ModelIntegrityError(source, f"not a DSSE envelope of type {PAYLOAD_TYPE}")
    payload = _unb64(str(envelope.get("payload", "")), source)
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise ModelIntegrityError(source, "unsigned: the envelope carries no signature")
    reasons = []
    signer = ""
    for sig in sigs:
        kid = str(sig.get("keyid", "")) if isinstance(sig, dict) else ""
        if kid in keyring.revoked:
            reasons.append(f"key {kid} is revoked ({keyring.revoked[kid]})")
            continue
        public = keyring.keys.get(kid)
        if public is None:
            reasons.append(f"key {kid or '(none)'} is not in the trusted keyring {keyring.source}")
            continue
        try:
            public.verify(_unb64(str(sig.get("sig", "")), source), _pae(PAYLOAD_TYPE, payload))
        except InvalidSignature:
            reasons.append(f"signature does not verify under key {kid}")
            continue
        signer = kid
        break
    else:
        raise ModelIntegrityError(source, "; ".join(reasons))
    return _parse_statement(payload, model=model, version=version, source=source), signer


def _parse_statement(payload: bytes, *, model: str, version: str, source: str) -> Manifest:
    try:
        st = json.loads(payload)
        pred = st["predicate"]
        files = tuple(FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in pred["files"])
        subject = st["subject"][0]
        signed = Manifest(str(pred["model"]), str(pred["version"]), files)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelIntegrityError(source, f"malformed statement: {exc!r}") from None
    if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE:
        raise ModelIntegrityError(source, "statement is not a chorus model manifest")
    if (signed.model, signed.version) != (model, version):
        raise ModelIntegrityError(source, f"signed for {signed.model} {signed.version}, not {model} {version}")
    for entry in files:
        check_relative_path(entry.path)
    paths = [f.path for f in files]
    if paths != sorted(set(paths)):
        raise ModelIntegrityError(source, "file list is not sorted or has duplicates")
    if subject.get("name") != f"{model}@{version}" or subject.get("digest", {}).get("sha256") != (
        signed.resources_digest()
    ):
        raise ModelIntegrityError(source, "subject digest does not cover the file list")
    return signed


def check_dir(root: Path, manifest: Manifest) -> dict[str, bytes]:
    """Read every signed file once; the bytes returned are the bytes hashed.

    The directory must hold exactly the signed set: extra, missing and changed
    files, symlinks and special files are each refused by name.
    """
    files, links = _walk(root)
    if links:
        raise ModelIntegrityError(str(root / links[0]), "symlink or special file in the model directory")
    signed = {f.path: f for f in manifest.files}
    extra = sorted(set(files) - set(signed))
    if extra:
        raise ModelIntegrityError(str(root / extra[0]), f"extra file, not in the signed manifest ({len(extra)} in all)")
    missing = sorted(set(signed) - set(files))
    if missing:
        raise ModelIntegrityError(str(root / missing[0]), f"missing: signed but not on disk ({len(missing)} in all)")
    out: dict[str, bytes] = {}
    for path, entry in signed.items():
        data = read_regular(root / path)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ModelIntegrityError(str(root / path), "changed: size or SHA-256 differs from the signed manifest")
        out[path] = data
    return out


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file at ``path``, from one descriptor: opened with ``O_NOFOLLOW``
    and ``O_NONBLOCK`` (a FIFO put there cannot block the open), checked with ``fstat`` on that
    descriptor, then read from it. So the file checked is the file read, even if the path is
    swapped between a directory walk and the read. ModelIntegrityError for a symlink, a FIFO, a
    device, a socket or a directory."""
    return _read_regular(path, follow=False, what="model file")[0]


def _read_regular(path: Path, *, follow: bool, what: str) -> tuple[bytes, int]:
    """(bytes, ``st_mode``) of the regular file at ``path``, as :func:`read_regular` reads them;
    ``follow`` lets a symlink lead to it (the keyring may be one)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelIntegrityError(str(path), f"a symlink where a {what} should be") from None
        raise
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ModelIntegrityError(str(path), f"{what} is not a regular file (mode {mode:o}): refused unread")
        return f.read(), mode
