"""How an idle worker waits for work on any of its shards, without polling them.

Every script that gives a shard claimable work (enqueue, a completion or policy
change that unparks a tenant, a repair) pushes tokens onto the shard's wake list
(``Keys.wake``, capped). An idle worker blocks on those lists:

* :class:`ListWaker`: one ``BLPOP`` over every shard's wake list, on one Redis server
  (or for a single shard anywhere). Redis hands each token to one blocked worker, the
  one that waited longest: no thundering herd.
* :class:`ThreadWaker`: on Redis Cluster the shards' lists live in different slots,
  and one ``BLPOP`` may not name keys of several slots. One thread per shard blocks on
  that shard's list (through the cluster client, which routes it and follows
  ``MOVED`` and failovers), only while the worker is idle; a token popped after
  the worker got busy is pushed back at once for another worker.

Why not sharded pub/sub (``SSUBSCRIBE``): every enqueue would be sent to every
subscribed worker, busy or not (or each worker would subscribe and unsubscribe at
every idle spell, one command per shard); redis-py's cluster pub/sub reads its
nodes one after the other, so it cannot wait on several at once; and Redis 6.2,
the embedded fallback, has no sharded pub/sub.

A wait that times out returns None: the worker then tries every shard once (a
token lost with a failed-over master costs at most that delay).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Protocol

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from chorus_client.constants import backoff
from shared.connection import as_str

__all__ = ["BLOCK_S", "ListWaker", "ThreadWaker", "Waker", "waker_for"]

log = logging.getLogger(__name__)

BLOCK_S = 1.0
"""Longest single block of a :class:`ThreadWaker` thread (it checks for stop and idle in between)."""


class Waker(Protocol):
    def wait(self, timeout_s: float) -> set[str] | None:
        """Block up to ``timeout_s`` seconds; the shards a wake-up named, or None when the time ran out."""

    def close(self) -> None:
        """Stop waiting (threads end within ``BLOCK_S``)."""


class ListWaker:
    """One blocking pop over the wake lists of every shard (``wake_keys``: shard -> wake list)."""

    def __init__(self, client: redis.Redis, wake_keys: Mapping[str, str]) -> None:
        self._r = client
        self._shard_of = {key: shard for shard, key in wake_keys.items()}

    def wait(self, timeout_s: float) -> set[str] | None:
        got = self._r.blpop(list(self._shard_of), timeout=timeout_s)
        if got is None:
            return None
        return {self._shard_of.get(as_str(got[0]), "")} - {""}

    def close(self) -> None:
        pass


class ThreadWaker:
    """One blocking pop per shard, each in its own thread, while the worker is idle (Redis Cluster)."""

    def __init__(self, client: redis.Redis, wake_keys: Mapping[str, str]) -> None:
        self._r = client
        self._woken: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(shard, key), name=f"wake-{shard}", daemon=True)
            for shard, key in wake_keys.items()
        ]
        for thread in self._threads:
            thread.start()

    def _watch(self, shard: str, key: str) -> None:
        pause: float | None = None
        while not self._stop.is_set():
            if not self._idle.wait(BLOCK_S):
                continue
            try:
                got = self._r.blpop([key], timeout=BLOCK_S)
                if got is not None and not self._idle.is_set():
                    self._r.rpush(key, b"1")  # the worker got busy meanwhile: the token is another's
                    got = None
                pause = None
            except (redis.RedisError, RedisClusterException) as exc:  # an outage or a failover: the loop reports it
                pause = backoff(pause)
                log.debug("wake-up wait on %s failed (%s); retrying in %.2fs", shard, exc, pause)
                self._stop.wait(pause)
                continue
            except Exception:  # a bug must not silence a shard: the timed look covers it meanwhile
                if self._stop.is_set():
                    return
                pause = backoff(pause)
                log.exception("wake-up wait on %s failed; retrying in %.2fs", shard, pause)
                self._stop.wait(pause)
                continue
            if got is not None:
                self._woken.put(shard)

    def wait(self, timeout_s: float) -> set[str] | None:
        self._idle.set()
        try:
            first = self._woken.get(timeout=timeout_s)
        except queue.Empty:
            return None
        finally:
            self._idle.clear()
        woken = {first}
        while True:
            try:
                woken.add(self._woken.get_nowait())
            except queue.Empty:
                return woken

    def close(self) -> None:
        """Stop the threads and wait for them (each ends within ``BLOCK_S``)."""
        self._stop.set()
        self._idle.set()  # let the threads see the stop
        for thread in self._threads:
            thread.join(BLOCK_S + 1.0)


def waker_for(client: redis.Redis, wake_keys: Mapping[str, str]) -> Waker:
    """A :class:`ThreadWaker` for several shards on Redis Cluster, else a :class:`ListWaker`."""
    if isinstance(client, RedisCluster) and len(wake_keys) > 1:
        return ThreadWaker(client, wake_keys)
    return ListWaker(client, wake_keys)
