"""Test helpers that need the test extras: a tiny Kokoro-shaped ONNX model built with onnx.helper, engines
around it, a test signer, the key-leak check. Doubles shared with the benchmarks are in :mod:`chorus.testing`."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper

from models.catalog import ModelSpec
from workers.engine import Engine
from workers.frontend_zh import MandarinFrontend
from workers.kokoro import KokoroBackend
from workers.model_store import ModelStore, manifest_name
from workers.signing import Keyring, Manifest, manifest_of_dir, new_private_key, sign_manifest

OWNED_KEYS = re.compile(
    rb"^chorus:(\{s[0-9]+\}:(depth|active|active:fresh|active:set|tenants|drr|served|leases|finishing|wake|dead|history|"
    rb"q:.+)|shards|workers|workers:info|apikeys|voices|\{models\}:(active|floor))$"
)
"""Keys that live as long as the deployment: their owner (the scheduler, the registries) manages them."""


def keys_without_ttl(r: object) -> list[bytes]:
    """Every key with no expiry that no component owns: what a leak looks like."""
    return sorted(k for k in r.scan_iter(count=1000) if r.ttl(k) == -1 and not OWNED_KEYS.match(k))  # type: ignore[attr-defined]


# The symbol set of Kokoro v1.0 (the real vocabulary's keys, in id order): the tiny
# model accepts the same phonemes as the real one.
SYMBOLS = (
    ';:,.!?—…"()“” \u0303ʣʥʦʨᵝꭧAIOQSTWYᵊabcdefhijklmnopqrstuvwxyzɑɐɒæβɔɕçɖðʤəɚɛɜɟɡɥɨɪʝɯɰŋɳɲɴøɸθœɹɾɻʁɽʂʃʈʧ'
    "ʊʋʌɣɤχʎʒʔˈˌːʰʲ↓→↗↘ᵻ"
)
SAMPLES_PER_TOKEN = 240  # 10 ms at 24 kHz
TINY_VOICES = ("jm_kumo", "jf_alpha", "zm_yunxi")  # zm_yunxi: the catalog's default Mandarin voice


def tiny_model_bytes(gain: float = 1.2) -> bytes:
    """Kokoro's interface (tokens, style, speed -> audio) with 10 ms of tone per token, peaks 1.2."""
    nodes = [
        helper.make_node("Cast", ["tokens"], ["tf"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["tf", "col"], ["col_t"]),
        helper.make_node("Tile", ["col_t", "reps"], ["tiled"]),
        helper.make_node("Reshape", ["tiled", "flat"], ["wave_in"]),
        helper.make_node("Mul", ["wave_in", "freq"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["sine"]),
        helper.make_node("Mul", ["sine", "gain"], ["loud"]),
        helper.make_node("Div", ["loud", "speed"], ["audio"]),
    ]
    inits = [
        helper.make_tensor("col", TensorProto.INT64, [2], [-1, 1]),
        helper.make_tensor("reps", TensorProto.INT64, [2], [1, SAMPLES_PER_TOKEN]),
        helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("freq", TensorProto.FLOAT, [], [0.7]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-kokoro",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "n"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["m"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_backend() -> KokoroBackend:
    vocab = {c: i + 1 for i, c in enumerate(SYMBOLS)}
    rng = np.random.default_rng(0)
    voices = {v: rng.standard_normal((510, 1, 256)).astype(np.float32) for v in TINY_VOICES}
    return KokoroBackend(tiny_model_bytes(), vocab, voices, model_id="tiny", threads=1, device="cpu")


def tiny_model_files(gain: float = 1.2) -> dict[str, bytes]:
    """The files of a tiny model version as the store holds them (model.onnx, vocab.json, voices.npz)."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, **{v: rng.standard_normal((510, 1, 256)).astype(np.float32) for v in TINY_VOICES})
    vocab = {"vocab": {c: i + 1 for i, c in enumerate(SYMBOLS)}}
    return {
        "model.onnx": tiny_model_bytes(gain),
        "vocab.json": json.dumps(vocab).encode(),
        "voices.npz": buf.getvalue(),
    }


def tiny_engine() -> Engine:
    backend = tiny_backend()
    return Engine(backends={v: backend for v in TINY_VOICES}, frontends={"zh": MandarinFrontend()})


@dataclass
class Signer:
    """A test signing key, a keyring that trusts it, and a manifest directory."""

    key: Ed25519PrivateKey
    keyring: Keyring
    manifests: Path

    @classmethod
    def make(cls, tmp: Path) -> Signer:
        key = new_private_key()
        ring = Keyring(source=str(tmp / "keyring.json"))
        ring.add(key.public_key(), "tests")
        manifests = tmp / "manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        return cls(key, ring, manifests)

    def store(self, root: Path) -> ModelStore:
        return ModelStore(root, keyring=self.keyring, manifest_dirs=[self.manifests])

    def sign(self, store: ModelStore, spec: ModelSpec, key: Ed25519PrivateKey | None = None) -> Path:
        """Sign the installed directory of ``spec`` as it is now."""
        manifest = manifest_of_dir(spec.id, spec.version, store.path(spec))
        return self.write(manifest, key)

    def write(self, manifest: Manifest, key: Ed25519PrivateKey | None = None) -> Path:
        path = self.manifests / manifest_name(manifest.model, manifest.version)
        path.write_text(json.dumps(sign_manifest(manifest, key or self.key)))
        return path


def growth(read: Callable[[str], object], unit: str, small: int = 4, large: int = 40) -> float:
    """How many times longer ``read`` takes on ``unit * large`` than on ``unit * small`` (best of three each,
    after one warm call): about ``large / small`` when linear. A ratio in one run, not a timing."""

    def cost(n: int) -> float:
        t0 = time.perf_counter()
        read(unit * n)
        return time.perf_counter() - t0

    cost(2)
    return min(cost(large) for _ in range(3)) / min(cost(small) for _ in range(3))
