"""Which model version the deployment serves: activation in Redis, verified first, never a rollback.

``chorus models activate`` verifies the version against its signed manifest on
the machine that runs it, then records it in the ``models:active`` hash with a
compare-and-set that refuses a version below the active one. Workers read the
hash at each heartbeat and load a new version between segments (see
``workers.worker``); they verify it again themselves, with the active version as
their floor, and report what they serve (or why they refused) in their
heartbeat info.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from models.catalog import ModelSpec
from shared.connection import as_str
from shared.errors import ModelIntegrityError
from shared.keys import Keys
from workers.model_store import ModelStore
from workers.signing import compare_version

__all__ = ["Activation"]


class Activation:
    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    def active(self) -> dict[str, str]:
        return {as_str(k): as_str(v) for k, v in self._r.hgetall(self.keys.models_active()).items()}

    def activate(self, spec: ModelSpec, store: ModelStore) -> str | None:
        """Verify ``spec`` here, then make it active; returns the version it replaces."""
        key = self.keys.models_active()
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(key, spec.id)
                    current = None if raw is None else as_str(raw)
                    if current is not None and compare_version(spec.version, current) < 0:
                        raise ModelIntegrityError(f"{spec.id} {spec.version}", f"rollback: {current} is active")
                    store.load(spec, floor=current)
                    pipe.multi()
                    pipe.hset(key, spec.id, spec.version)
                    pipe.execute()
                    return current
                except redis.WatchError:
                    continue

    def worker_models(self) -> dict[str, dict[str, Any]]:
        """Worker id -> its heartbeat info (``models``: id -> version served, ``model_errors``)."""
        out: dict[str, dict[str, Any]] = {}
        for name, raw in self._r.hgetall(self.keys.worker_info()).items():
            try:
                out[as_str(name)] = json.loads(raw)
            except ValueError:
                continue
        return out
