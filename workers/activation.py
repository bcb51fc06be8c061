"""Which model version the deployment serves: activation in Redis, verified first, never a rollback.

``chorus models activate`` verifies the version against its signed manifest on
the machine that runs it, then records it in the ``models:active`` hash with a
compare-and-set that refuses a version below the rollback floor. The floor is
the highest version ever activated, kept in Redis (``models:floor``, same hash
slot, written in the same transaction) rather than in running workers' memory,
so a worker that starts after someone wrote ``models:active`` by hand still
refuses an older version (:meth:`Activation.serving`). Workers read the hash at
each heartbeat and load a new version between segments (see
``workers.worker``); they verify it again themselves, with the active version as
their floor, and report what they serve (or why they refused) in their
heartbeat info.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from chorus_client.keys import Keys
from models.catalog import ModelSpec
from shared.connection import as_str
from shared.errors import ModelIntegrityError
from workers.model_store import ModelStore
from workers.signing import compare_version

__all__ = ["Activation"]


def _decode(raw: dict[Any, Any]) -> dict[str, str]:
    return {as_str(k): as_str(v) for k, v in raw.items()}


class Activation:
    """The ``models:active`` and ``models:floor`` hashes (model id -> version) of one deployment."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    def active(self) -> dict[str, str]:
        """Model id -> the version activated, as the hash holds it (unchecked: see :meth:`serving`)."""
        return _decode(self._r.hgetall(self.keys.models_active()))

    def floors(self) -> dict[str, str]:
        """Model id -> its rollback floor (highest version ever activated), where one is recorded."""
        return _decode(self._r.hgetall(self.keys.models_floor()))

    def serving(self) -> dict[str, str]:
        """The versions a worker starting now must serve: :meth:`active`, checked against the rollback floor.

        Both hashes are read in one transaction. A model without a recorded floor
        (activated before floors existed) has its active version as its floor.
        Raises :class:`ModelIntegrityError` when an active version is below its
        floor, or a floor is recorded for a model no longer active: both can only
        come from writes past ``chorus models activate``, which is how to fix them.
        """
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(self.keys.models_active())
        pipe.hgetall(self.keys.models_floor())
        raw_active, raw_floor = pipe.execute()
        active, floors = _decode(raw_active), _decode(raw_floor)
        for model_id, version in sorted(active.items()):
            floor = floors.get(model_id, version)
            if compare_version(version, floor) < 0:
                raise ModelIntegrityError(
                    f"{model_id} {version}",
                    f"rollback: {self.keys.models_active()} names {version}, below the floor {floor} (the highest "
                    f"version ever activated); refusing to serve it. Run `chorus models activate {model_id} "
                    f"<version>` with {floor} or later to choose what workers serve",
                )
        for model_id, floor in sorted(floors.items()):
            if model_id not in active:
                raise ModelIntegrityError(
                    f"{model_id} (none active)",
                    f"{self.keys.models_active()} names no version but the floor is {floor}; refusing to fall back "
                    f"to the catalog's version. Run `chorus models activate {model_id} <version>` with {floor} "
                    f"or later",
                )
        return active

    def activate(self, spec: ModelSpec, store: ModelStore) -> str | None:
        """Verify ``spec`` here, then make it active and raise the floor to it; returns the version it replaces.

        The floor is the higher of the recorded floor and the active version
        (a deployment from before floors has none recorded). A version below it is
        refused (:class:`ModelIntegrityError`, "rollback"), as is one that fails
        verification in ``store``. Both hashes are written in one MULTI, under a
        WATCH of both, so concurrent activations cannot lower either.
        """
        active_key, floor_key = self.keys.models_active(), self.keys.models_floor()
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(active_key, floor_key)  # type: ignore[no-untyped-call]
                    raw_current, raw_floor = pipe.hget(active_key, spec.id), pipe.hget(floor_key, spec.id)
                    current = None if raw_current is None else as_str(raw_current)
                    floor = None if raw_floor is None else as_str(raw_floor)
                    if floor is None or (current is not None and compare_version(current, floor) > 0):
                        floor = current
                    if floor is not None and compare_version(spec.version, floor) < 0:
                        active = f"; {current} is active" if current != floor else ""
                        raise ModelIntegrityError(
                            f"{spec.id} {spec.version}",
                            f"rollback: {floor} is the floor (highest version ever activated){active}",
                        )
                    store.load(spec, floor=floor)
                    pipe.multi()
                    pipe.hset(active_key, spec.id, spec.version)
                    pipe.hset(floor_key, spec.id, spec.version)  # not below the floor, checked above
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
