"""The worker loop: wait for work, claim, synthesise, publish frames, acknowledge.

A worker serves every shard of the deployment (``<prefix>:shards``, read at each
heartbeat, so a grown deployment is served at once), or the shards it is given:
it claims from them in a fair order (:mod:`broker.picker`) and, when none has
work, blocks until a wake-up names one (:mod:`broker.wake`).

A segment's frames are XADDed to the request's audio stream as each model call
finishes; only then is the lane entry acknowledged and deleted (at-least-once).
The worker that completes a request's last segment writes the end marker and
sets the stream's expiry. Anything that cannot be served becomes an error
frame (when the request can be identified) and a dead letter, and the worker
goes on serving.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import redis
from redis.exceptions import RedisClusterException

from broker.claim import ADMITTED, REJECTIONS, Claimer
from broker.claimed import Claimed
from broker.lease import heartbeat_script
from broker.picker import ShardPicker, probe_interval
from broker.wake import Waker, waker_for
from chorus_client.constants import (
    DEFAULT_LEASE_MS,
    DEFAULT_MAX_ATTEMPTS,
    FINISHED_AUDIO_TTL_S,
    FINISHED_REQUEST_TTL_S,
    HEARTBEAT_S,
    PENDING_AUDIO_TTL_S,
    REPLICA_TIMEOUT_MS,
    WORKER_LIVE_S,
    Durability,
    EndStatus,
    RequestStatus,
    backoff,
)
from chorus_client.drive import replicated
from chorus_client.keys import Keys, shard_names, shard_of
from chorus_client.placement import parse_shard_count
from chorus_client.protocol import (
    EndFrame,
    ErrorFrame,
    SegmentJob,
    decode_segment,
    encode_frame,
    peek_segment_address,
)
from chorus_client.segment import weight
from models.catalog import load_catalog
from shared.audio import DEFAULT_FRAME_MS, silence_pcm, to_pcm16
from shared.config import durability_from_env
from shared.connection import as_str
from shared.errors import ChorusError, ConfigError, ProtocolError, RequestNotFound
from workers.backend import SynthesisBackend
from workers.engine import Engine
from workers.joins import SegmentEdges
from workers.publish import FrameSink, append_frames

__all__ = ["Worker", "WorkerConfig"]

log = logging.getLogger(__name__)
VOICES_REFRESH_S = 60.0
"""How often a worker writes its voices into the ``voices`` hash when nothing changed."""


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10000}"


@dataclass
class WorkerConfig:
    name: str = field(default_factory=_default_name)
    """Consumer name in the group; unique per worker."""
    claim_count: int = 1
    """Segments claimed per script call."""
    idle_wait_s: float = 1.0
    """Longest blocking wait for a wake-up before claiming again."""
    frame_ms: int = DEFAULT_FRAME_MS
    """Longest audio frame."""
    audio_ttl_s: int = FINISHED_AUDIO_TTL_S
    """How long a finished request's audio stays readable."""
    pending_audio_ttl_s: int = PENDING_AUDIO_TTL_S
    """Expiry set with every frame written before the end marker, so no write can leave an
    audio stream without one (the request may be lost meanwhile: flushed, evicted, expired)."""
    finished_ttl_s: int = FINISHED_REQUEST_TTL_S
    """How long a finished request's status stays readable."""
    heartbeat_s: float = HEARTBEAT_S
    """How often the heartbeat is written; at most a third of ``WORKER_LIVE_S`` (a live window)."""
    lease_s: float = DEFAULT_LEASE_MS / 1000
    """A claimed segment is reclaimed by another worker this long after its lease was last
    extended; a live worker extends it every third of that."""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Deliveries of a segment before it is dead-lettered with an error frame."""
    idle_tenant_s: float = field(default_factory=lambda: float(os.environ.get("CHORUS_IDLE_TENANT_S", "600")))
    """A tenant with nothing queued or in flight for this long is forgotten by the sweep: its empty
    lane streams, scheduler state and counters go (totals roll up into a capped history); its policy
    stays. ``$CHORUS_IDLE_TENANT_S``, default 600."""
    sweep_s: float = 30.0
    """How often (at most; one worker per period, by a lock in Redis) the lane streams are scanned
    for entries of idle tenants that the depth counter missed (raw XADDs by a foreign producer)."""
    durability: Durability = field(default_factory=lambda: durability_from_env())
    """``replica``: frames, error frames, end frames and completions return only once a replica has
    them (``WAIT``), so a master's death loses nothing this worker reported. ``$CHORUS_DURABILITY``."""
    reserve: int = 0
    """Workers (of all live ones) kept for tenants coming back from idle: their first audio
    never waits for a busy worker, at the price of idle capacity under saturation. 0 keeps
    the scheduler work-conserving. Every worker of a deployment should use the same value."""

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_s <= WORKER_LIVE_S / 3:
            raise ConfigError(f"heartbeat_s must be in (0, {WORKER_LIVE_S / 3:g}] (a third of the live window)")
        if self.lease_s <= 0 or self.idle_wait_s <= 0 or self.claim_count < 1 or self.max_attempts < 1:
            raise ConfigError("lease_s and idle_wait_s must be positive, claim_count and max_attempts at least 1")
        if self.reserve < 0 or self.sweep_s <= 0 or self.idle_tenant_s <= 0:
            raise ConfigError("reserve must be 0 or more, sweep_s and idle_tenant_s positive")


class _Cancelled(Exception):
    """The request was cancelled while its segment was being synthesised."""


class Worker:
    """Serves the deployment's shards (``shards`` fixes which: then the shard count is not followed)."""

    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        *,
        keys: Keys | None = None,
        config: WorkerConfig | None = None,
        shards: list[str] | None = None,
    ) -> None:
        self._r = client
        self.engine = engine
        self.keys = keys or Keys()
        """The deployment's keys (its prefix); per-shard keys come from :meth:`Keys.of_shard`."""
        self.config = config or WorkerConfig()
        self._fixed_shards = shards is not None
        self.claimers: dict[str, Claimer] = {}
        """Shard -> its claimer, for every shard served."""
        self.picker = ShardPicker([])
        self._waker: Waker | None = None
        self._shard = self.keys.shard
        """The shard of the entry being served."""
        self._heartbeat_script = heartbeat_script(client)
        self._serve_shards(list(shards) if shards else [self.keys.shard])
        self.stop_event = threading.Event()
        self.served = 0
        self.failed = 0
        self.errors = 0
        """Unexpected errors caught by the serving loop (each is logged with its traceback)."""
        self.outages = 0
        """Episodes of Redis errors the serving loop backed off from (each logged once)."""
        self._last_beat = 0.0
        self._t0 = 0.0
        self._last_reclaim = 0.0
        self._last_sweep = float("-inf")  # the first reclaim pass sweeps
        self._current: tuple[str, list[Claimed]] = (self.keys.shard, [])
        """The shard and the claimed segments not yet completed (their leases are kept alive)."""
        self._settle_us = 0.0
        self.live_workers = 1
        """Workers with a recent heartbeat, counted at each heartbeat (for the reserve)."""
        self.model_errors: dict[str, str] = {}
        """Model id -> why the last activated version was refused (shown by `chorus models list`)."""
        self.model_failures = 0
        self._refused: set[tuple[str, str]] = set()
        self._loading: threading.Thread | None = None
        self._ready: tuple[str, str, SynthesisBackend | None, list[str], str] | None = None
        self._owned: tuple[str, int] | None = None
        """(request id, seq) of the segment the entry being served owns, once admitted."""
        self._settled_entry = False
        """Whether the entry being served has been completed."""
        self._catalog = load_catalog()
        self._voices_published: dict[str, str] = {}
        self._voices_at = 0.0

    # -- shards ---------------------------------------------------------------------

    @property
    def claimer(self) -> Claimer:
        """The claimer of the shard being served (of the first shard between entries)."""
        return self.claimers.get(self._shard) or next(iter(self.claimers.values()))

    @property
    def shards(self) -> list[str]:
        return list(self.claimers)

    def _serve_shards(self, names: list[str]) -> None:
        """Serve exactly ``names``: claimers, the picker's order and the wake-up wait follow."""
        if names == list(self.claimers):
            return
        self.claimers = {name: self.claimers.get(name) or Claimer(self._r, self.keys.of_shard(name)) for name in names}
        self.picker.set_shards(names)
        if self._waker is not None:
            self._waker.close()
        self._waker = waker_for(self._r, {name: self.keys.of_shard(name).wake() for name in names})
        if len(names) > 1:
            log.info("worker %s serves %d shards (%s … %s)", self.config.name, len(names), names[0], names[-1])

    def wait_for_work(self, timeout_s: float) -> None:
        """Block until a wake-up names a shard (the picker tries it first) or ``timeout_s`` passes (the
        picker then tries every shard)."""
        assert self._waker is not None
        self.picker.woken(self._waker.wait(timeout_s))

    # -- loop -----------------------------------------------------------------------

    def run(self) -> None:
        """Serve until :meth:`stop` (SIGTERM in ``chorus worker``): the segment in progress finishes,
        claimed ones not started are handed back at once. Redis outages are retried with backoff."""
        log.info("worker %s serving voices %s", self.config.name, ", ".join(self.engine.voices()))
        keeper = threading.Thread(target=self._keep_leases, name=f"lease-{self.config.name}", daemon=True)
        keeper.start()
        wait: float | None = None
        episode: str | None = None
        while not self.stop_event.is_set():
            try:
                if not self.run_once():
                    self.wait_for_work(self.config.idle_wait_s)
                if episode is not None:
                    log.warning("redis is back after: %s", episode)
                episode, wait = None, None
            except (redis.RedisError, RedisClusterException) as exc:
                # a lost connection, a timeout or an error that describes the server's state
                # (OOM, READONLY, BUSY, LOADING ...): an outage, not a reason to exit; what this
                # worker holds is reclaimed by lease if it does not come back in time
                reason = f"{type(exc).__name__}: {exc}"
                if episode is None:
                    self.outages += 1
                    log.warning("redis unavailable (%s); retrying with backoff", reason)
                episode = reason
                wait = backoff(wait)
                self.stop_event.wait(wait)
            except Exception:  # a bug must not take the worker down: log it, back off, go on
                log.exception("worker %s: unexpected error in the serving loop", self.config.name)
                self.errors += 1
                wait = backoff(wait)
                self.stop_event.wait(wait)
        if self._waker is not None:
            self._waker.close()
        try:
            self._r.zrem(self.keys.workers(), self.config.name)
            self._r.hdel(self.keys.worker_info(), self.config.name)
        except (redis.RedisError, RedisClusterException) as exc:
            log.warning("could not deregister %s: %s", self.config.name, exc)
        log.info("worker %s stopped after %d segments", self.config.name, self.served)

    def stop(self) -> None:
        self.stop_event.set()

    def run_once(self) -> int:
        """Reclaim expired leases, claim, and serve one batch; returns how many segments were taken."""
        self.heartbeat()
        self._swap_ready()
        lease_ms = int(self.config.lease_s * 1000)
        items: list[Claimed] = []
        shard = self._shard
        now = time.monotonic()
        if now - self._last_reclaim >= min(1.0, self.config.lease_s / 4):
            self._last_reclaim = now
            sweep = now - self._last_sweep >= self.config.sweep_s
            if sweep:
                self._last_sweep = now
            for name, claimer in self.claimers.items():
                if not items:
                    items = claimer.reclaim(
                        self.config.name,
                        self.config.claim_count,
                        lease_ms=lease_ms,
                        max_attempts=self.config.max_attempts,
                    )
                    if items:
                        shard = name
                    for item in items:
                        log.warning("reclaimed %s %s (attempt %d)", item.stream, item.entry_id, item.attempt)
                self._finish_orphans(name, claimer)
                if sweep:
                    self._sweep(name, claimer)
        if not items:
            for name in self.picker.order():
                claimer = self.claimers[name]
                items = claimer.claim(
                    self.config.name,
                    self.config.claim_count,
                    workers=self.live_workers,
                    reserve=self.config.reserve,
                    lease_ms=lease_ms,
                )
                if items:
                    self.picker.found(name, claimer.claims.weight)
                    shard = name
                    break
                self.picker.empty(name)
        self._shard = shard
        self._current = (shard, list(items))
        for i, item in enumerate(items):
            if self.stop_event.is_set():
                self.claimer.release(items[i:])  # shutting down: others take these at once
                break
            self.serve(item)
            self.picker.served(shard, self._measured_us())
            self._current = (shard, items[i + 1 :])
        self._current = (shard, [])
        return len(items)

    def _sweep(self, shard: str, claimer: Claimer) -> None:
        """Sweep ``shard``'s lane streams, if no other worker does it this period (a lock in Redis)."""
        if self._r.set(
            self.keys.of_shard(shard).sweep_lock(), self.config.name, nx=True, px=int(self.config.sweep_s * 1000)
        ):
            found, forgotten = claimer.sweep(idle_ms=int(self.config.idle_tenant_s * 1000))
            if found:
                log.warning("found %d queued entries the depth counter missed (raw XADDs); scheduled them", found)
            if forgotten:
                log.info(
                    "forgot %d idle tenants (nothing queued or in flight for %.0f s)",
                    forgotten,
                    self.config.idle_tenant_s,
                )

    def _keep_leases(self) -> None:
        """Extend the leases of the segments this worker holds, every third of the lease."""
        lease_ms = int(self.config.lease_s * 1000)
        while not self.stop_event.wait(self.config.lease_s / 3):
            shard, held = self._current
            claimer = self.claimers.get(shard)
            if claimer is None or not held:
                continue
            try:
                kept = claimer.extend(self.config.name, held, lease_ms=lease_ms)
            except (redis.RedisError, RedisClusterException) as exc:
                log.warning("could not extend leases: %s", exc)
                continue
            for item, ok in zip(held, kept, strict=True):
                if ok is False:  # None: completed meanwhile
                    log.warning("lost the lease of %s %s to another worker", item.stream, item.entry_id)

    def heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_beat < self.config.heartbeat_s:
            return
        self._last_beat = now
        info = {
            "voices": self.engine.voices(),
            "pid": os.getpid(),
            "served": self.served,
            "devices": sorted({b.device for b in self.engine.backends.values()}),
            "models": self.engine.versions,
            "model_errors": self.model_errors,
            "model_failures": self.model_failures,
        }
        # the beat and the liveness window are by the server's clock, not this machine's; the script
        # runs on its own (Redis Cluster clients refuse scripts in a pipeline)
        window_ms = int(WORKER_LIVE_S * 1000)
        live = self._heartbeat_script(keys=[self.keys.workers()], args=[self.config.name, window_ms])
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(self.keys.worker_info(), self.config.name, json.dumps(info))
        pipe.hgetall(self.keys.models_active())
        pipe.get(self.keys.shards())
        voices = self.engine.voice_info(self._catalog)
        republish = voices != self._voices_published or now - self._voices_at > VOICES_REFRESH_S
        if republish and voices:  # what clients read to enqueue (a FLUSHALL loses it: written again)
            pipe.hset(self.keys.voices(), mapping=voices)  # type: ignore[arg-type]
        _, active, count, *_ = pipe.execute()
        if republish:
            self._voices_published, self._voices_at = voices, now
        self.live_workers = max(1, int(live))
        self.picker.probe_s = probe_interval(self.live_workers)
        if not self._fixed_shards:
            try:
                self._serve_shards(shard_names(parse_shard_count(count)))
            except ChorusError as exc:  # a damaged count: keep serving what we serve, and say why
                log.error("cannot read the shard count (%s); still serving %s", exc, ", ".join(self.claimers))
        self._follow_activation({as_str(k): as_str(v) for k, v in active.items()})

    # -- hot activation -----------------------------------------------------------------

    def _follow_activation(self, active: dict[str, str]) -> None:
        """Start loading an activated version this worker does not serve yet (one at a time, in the background)."""
        if self.engine.loader is None or (self._loading is not None and self._loading.is_alive()):
            return
        for model_id, version in sorted(active.items()):
            current = self.engine.versions.get(model_id)
            if current is None or current == version or (model_id, version) in self._refused:
                continue
            self._loading = threading.Thread(
                target=self._load_version,
                args=(model_id, version, current),
                name=f"load-{model_id}-{version}",
                daemon=True,
            )
            self._loading.start()
            return

    def _load_version(self, model_id: str, version: str, current: str) -> None:
        """Runs in the loader thread: touches nothing shared but ``_ready``, which the worker loop applies."""
        assert self.engine.loader is not None
        try:
            backend, voices = self.engine.loader(model_id, version, current)
        except (ChorusError, OSError, ValueError, RuntimeError) as exc:
            self._ready = (model_id, version, None, [], str(exc))
            return
        self._ready = (model_id, version, backend, voices, "")

    def _swap_ready(self) -> None:
        """Between segments: serve a freshly verified version from the next segment on, or record its refusal."""
        ready, self._ready = self._ready, None
        if ready is None:
            return
        model_id, version, backend, voices, error = ready
        previous = self.engine.versions.get(model_id)
        if backend is None:
            self._refused.add((model_id, version))
            self.model_errors[model_id] = f"{version}: {error}"
            self.model_failures += 1
            log.error(
                "worker %s refused %s %s, still serving %s: %s", self.config.name, model_id, version, previous, error
            )
        else:
            self.engine.swap(model_id, version, backend, voices)
            self.model_errors.pop(model_id, None)
            log.info("worker %s now serves %s %s (was %s)", self.config.name, model_id, version, previous)
        self.heartbeat(force=True)

    # -- one segment --------------------------------------------------------------------

    def serve(self, item: Claimed) -> None:
        """Serve one claimed entry. Whatever the entry holds, it ends completed: synthesised, or
        dead-lettered with its reason (and an error frame when it owns a segment of a request).
        Only Redis errors propagate (the entry stays leased and is reclaimed)."""
        self._t0 = time.perf_counter()
        self._owned, self._settled_entry = None, False
        try:
            self._serve(item)
        except (redis.RedisError, RedisClusterException):
            raise
        except Exception as exc:  # one entry must never take the worker down
            log.exception("entry %s %s failed unexpectedly", item.stream, item.entry_id)
            self.errors += 1
            reason = f"{type(exc).__name__}: {exc}"
            if self._settled_entry:
                return  # completed before the failure: nothing is left to settle
            if self._owned is not None:  # it owns a segment: fail that segment, so the request still ends
                self._error(item, self._owned[0], "internal_error", reason, self._owned[1])
            else:
                self._reject(item, "internal_error", reason)

    def _own_shard(self, request_id: str) -> bool:
        """Whether ``request_id`` names the shard whose lane stream the entry came from."""
        try:
            return shard_of(request_id) == self._shard
        except RequestNotFound:
            return False

    def _serve(self, item: Claimed) -> None:
        rid = item.request_id
        job: SegmentJob | None = None
        try:
            if rid is None:
                raise ProtocolError("r", "entry has no request id")
            if not self._own_shard(rid):
                raise ProtocolError("r", f"request {rid!r} is not a request id of shard {self._shard}")
            payload = item.payload
            if payload is None:
                raise ProtocolError("p", "entry has no payload")
            job = decode_segment(payload)
            if job.request_id != rid:
                raise ProtocolError("req", "payload request id differs from the entry's")
        except (ProtocolError, RequestNotFound) as exc:
            address = peek_segment_address(item.payload or b"") if rid is not None else None
            if rid is not None and address is not None and address[0] == rid and self._own_shard(rid):
                # the segment it stands for is known: fail that segment so the listener can go on
                verdict, _ = self.claimer.admit(item, rid, address[1])
                if verdict in ADMITTED:
                    self._error(item, rid, "malformed_entry", str(exc), address[1])
                    return
            self._reject(item, "malformed_entry", str(exc))
            return
        verdict, segments = self.claimer.admit(item, rid, job.seq)
        if verdict not in ADMITTED:
            code, reason = REJECTIONS.get(verdict, ("rejected", verdict))
            self._reject(item, code, f"{reason} (request {rid}, seq {job.seq}, {segments} segments)")
            return
        self._owned = (rid, job.seq)
        if item.exhausted:
            reason = f"delivered {item.attempt - 1} times without completing (worker crashes or stalls)"
            self._error(item, rid, "attempts_exhausted", reason, job.seq)
            return
        if verdict == "cancelled":
            self._complete(item, rid, ok=True, dropped=True)  # dropped without synthesis
            return
        if verdict == "expired":
            self._error(item, rid, "deadline_exceeded", "the request's deadline passed", job.seq, dead_letter=False)
            return
        try:
            self._synthesise(job, item.attempt)
        except _Cancelled:
            self._complete(item, rid, ok=True)
            return
        except (redis.RedisError, RedisClusterException):
            raise
        except Exception as exc:  # the model or frontend failed on this text: fail this segment only
            log.exception("segment %s/%d failed", rid, job.seq)
            self._error(item, rid, "synthesis_failed", f"{type(exc).__name__}: {exc}", job.seq)
            return
        self.served += 1
        self._complete(item, rid, ok=True, chars=max(1, round(weight(job.text))))

    def _synthesise(self, job: SegmentJob, attempt: int = 1) -> None:
        sr = self.engine.output_rate(job)  # the request's rate: render resamples to it
        sink = FrameSink(
            self._r,
            self.keys.audio(job.request_id),
            job,
            sr,
            self.config.frame_ms,
            attempt,
            self.config.pending_audio_ttl_s,
        )
        # trimmed, faded and levelled edges, then the pause its punctuation and <break> ask for (workers.joins)
        edges = SegmentEdges.for_job(job, sr, self.engine.models.get(job.voice))
        t0 = time.perf_counter()
        req = self.keys.for_request(job.request_id).request(job.request_id)
        for audio in self.engine.render(job):
            if self._r.hget(req, "cancelled"):
                raise _Cancelled  # stop at the next frame boundary
            sink.add(to_pcm16(edges.push(np.asarray(audio, dtype=np.float32))))
        sink.add(to_pcm16(edges.finish()))
        if edges.pause_ms:
            sink.add(silence_pcm(edges.pause_ms, sr))
        sink.close()
        self._replicate_audio(job.request_id, self.config.pending_audio_ttl_s)
        log.debug("segment %s/%d: %d frames in %.3fs", job.request_id, job.seq, sink.index, time.perf_counter() - t0)

    def _measured_us(self) -> int:
        """Worker time spent on the current entry: the scheduler's correction of its estimate.

        The completion call itself is part of the cost but cannot time itself, so the
        moving average of this worker's recent completion calls stands in for it (it
        matters for short segments: a few per cent of their time).
        """
        return int((time.perf_counter() - self._t0) * 1e6 + self._settle_us)

    def _settled(self, started: float) -> None:
        self._settle_us += ((time.perf_counter() - started) * 1e6 - self._settle_us) / 16

    def _complete(self, item: Claimed, rid: str, ok: bool, dropped: bool = False, chars: int = 0) -> None:
        """Settle the entry; ``chars`` (counted here from the text, never the producer's ``c``) makes the
        measured time a sample of the shared cost rate; 0 for anything not synthesised in full."""
        started = time.perf_counter()
        done = self.claimer.complete(
            item,
            rid,
            ok,
            self._measured_us(),
            lease_ms=int(self.config.lease_s * 1000),
            dropped=dropped,
            chars=chars,
            replicas=self.config.durability.replicas,
        )
        self._settled_entry = True
        self._settled(started)
        if done.finished:
            self._end(rid, done.segments, done.failed, done.status)
        elif done.segments < 0:
            self._lost(rid)

    def _replicate_audio(self, rid: str, ttl_s: int) -> None:
        """With ``durability=replica``: return once a replica has everything written to the request's
        audio stream so far (the stream's expiry is set again, the same, as the write ``WAIT`` needs on
        its connection); ``NOREPLICAS`` otherwise, which the loop treats as an outage."""
        replicas = self.config.durability.replicas
        if not replicas:
            return
        key = self.keys.audio(rid)
        replicated(self._r, key, lambda pipe: pipe.expire(key, ttl_s), replicas, REPLICA_TIMEOUT_MS)

    def _lost(self, rid: str) -> None:
        """The request's metadata vanished while this segment was served (a FLUSHALL, a restart
        without persistence, an eviction): end its stream so the listener hears "request lost" now."""
        log.warning("request %s is gone from Redis; ending its stream", rid)
        lost = ErrorFrame(
            "request_lost",
            "the request is gone from Redis (flushed, evicted, expired or restarted "
            "without persistence) and will not finish",
        )
        frames = [encode_frame(lost), encode_frame(EndFrame(1, EndStatus.ERROR))]
        append_frames(self._r, self.keys.audio(rid), frames, self.config.audio_ttl_s)

    def _end(self, rid: str, segments: int, failed: int, status: str) -> None:
        """Write the end marker (a cancelled stream has its own already) and let go of the request."""
        if status != RequestStatus.CANCELLED:
            end = encode_frame(EndFrame(segments, EndStatus.OK if failed == 0 else EndStatus.ERROR))
            append_frames(self._r, self.keys.audio(rid), [end], self.config.audio_ttl_s)
            self._replicate_audio(rid, self.config.audio_ttl_s)  # before it stops being overdue
        keys = self.keys.for_request(rid)
        pipe = self._r.pipeline(transaction=False)
        pipe.expire(keys.request(rid), self.config.finished_ttl_s)
        pipe.zrem(keys.finishing(), rid)
        pipe.execute()

    def _finish_orphans(self, shard: str, claimer: Claimer) -> None:
        """End the streams of ``shard``'s requests whose finishing worker died between its last
        completion and the marker."""
        keys = self.keys.of_shard(shard)
        for rid in claimer.unfinished():
            try:
                req = keys.request(rid)
            except RequestNotFound:  # not a request id of this shard: nothing to end
                self._r.zrem(keys.finishing(), rid)
                continue
            segments, failed, status = self._r.hmget(req, ["segments", "failed", "status"])
            if segments is None:
                self._r.zrem(keys.finishing(), rid)
                continue
            log.warning("writing the overdue end marker of %s", rid)
            self._end(rid, int(segments), int(failed or 0), as_str(status or b""))

    def _error(self, item: Claimed, rid: str, code: str, message: str, seq: int, dead_letter: bool = True) -> None:
        """Fail segment ``seq`` of request ``rid``, which this entry owns (admitted): an error frame
        the listener can skip, a dead letter unless told otherwise, and the completion."""
        self.failed += 1
        frame = encode_frame(ErrorFrame(code, message, seq))
        append_frames(self._r, self.keys.audio(rid), [frame], self.config.pending_audio_ttl_s)
        self._replicate_audio(rid, self.config.pending_audio_ttl_s)
        if dead_letter:
            self.claimer.dead_letter_record(item, f"{code}: {message}", self.config.name)
        self._complete(item, rid, ok=False)

    def _reject(self, item: Claimed, code: str, message: str) -> None:
        """An entry that owns no segment of a request of its tenant: dead-letter it and settle the
        tenant's account; no request and no audio stream is touched."""
        self.failed += 1
        self.claimer.dead_letter(item, f"{code}: {message}", self.config.name, self._measured_us())
