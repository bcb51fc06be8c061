"""Sans-I/O protocol operations and the two drivers that run them: one sync, one asyncio.

An operation is a generator: it yields the steps it needs and receives each
step's result, as h11 and httpx separate protocol from I/O. The protocol logic
(what to read, how to reorder, when to back off, which refusal means what) is
written once, in the operations; a driver only performs steps:

* :class:`Command` — one Redis command (``args`` as for ``execute_command``); the
  driver sends back the parsed reply, or throws the ``redis.RedisError`` into the
  operation, which decides whether it is an outage to ride out or an error to raise.
* :class:`Transaction` — commands run in one MULTI/EXEC (all keys in one slot); the
  reply is the list of their replies.
* :class:`Replicated` — one command and ``WAIT`` on one connection of the key's node.
* :class:`Sleep` — wait this many seconds.
* :class:`Emit` — hand ``value`` to the caller (a frame, with its stream position).

``run_sync`` / ``run_async`` drain an operation and return its result;
``iterate_sync`` / ``iterate_async`` also yield what it emits. These four loops
are the only I/O loops of the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, Union, cast

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import PipelineCommand
from redis.exceptions import RedisClusterException

__all__ = [
    "Command",
    "Emit",
    "Op",
    "Replicated",
    "Sleep",
    "Step",
    "Transaction",
    "iterate_async",
    "iterate_sync",
    "node_client",
    "quiet",
    "replicated",
    "run_async",
    "run_sync",
]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Command:
    """One Redis command: ``args[0]`` is its name (``"XREAD"``, ``"EXISTS"`` …)."""

    args: tuple[Any, ...]


@dataclass(frozen=True)
class Transaction:
    """Commands run in one MULTI/EXEC; their keys must share a hash slot (Redis Cluster)."""

    commands: tuple[Command, ...]


@dataclass(frozen=True)
class Replicated:
    """``command``, then ``WAIT replicas timeout_ms`` on the same connection to the node that owns
    ``key``: the reply is the command's; fewer replicas than asked raise ``NOREPLICAS``. For writes
    that must survive the master's death (``durability="replica"``)."""

    command: Command
    key: str
    replicas: int
    timeout_ms: int


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit:
    value: Any


Step = Union[Command, Transaction, Replicated, Sleep, Emit]  # noqa: UP007 - runtime alias on Python 3.10
Op = Generator[Step, Any, R]
"""An operation: yields steps, receives replies (``None`` after a Sleep or an Emit), returns ``R``."""


def iterate_sync(client: redis.Redis, op: Op[Any]) -> Iterator[Any]:
    """Run ``op`` on a sync client, yielding every emitted value."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(reply)
        except StopIteration:
            return
        reply, error = None, None
        if isinstance(step, Command):
            try:
                reply = client.execute_command(*step.args)  # type: ignore[no-untyped-call]
            except redis.RedisError as exc:
                error = exc
            except RedisClusterException as exc:  # no node of the cluster answers: an outage like any other
                error = redis.ConnectionError(str(exc))
        elif isinstance(step, Transaction):
            try:
                pipe = client.pipeline(transaction=True)
                for command in step.commands:
                    pipe.execute_command(*command.args)  # type: ignore[no-untyped-call]
                reply = pipe.execute()
            except redis.RedisError as exc:
                error = exc
            except RedisClusterException as exc:  # no node of the cluster answers: an outage like any other
                error = redis.ConnectionError(str(exc))
        elif isinstance(step, Replicated):
            try:
                replies = replicated(client, step.key, partial(_queue, step.command), step.replicas, step.timeout_ms)
                reply = replies[0]
            except redis.RedisError as exc:
                error = exc
            except RedisClusterException as exc:  # no node of the cluster answers: an outage like any other
                error = redis.ConnectionError(str(exc))
        elif isinstance(step, Sleep):
            time.sleep(step.seconds)
        else:
            yield step.value


async def iterate_async(client: aredis.Redis, op: Op[Any]) -> AsyncIterator[Any]:
    """Run ``op`` on an asyncio client, yielding every emitted value."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(reply)
        except StopIteration:
            return
        reply, error = None, None
        if isinstance(step, Command):
            try:
                reply = await client.execute_command(*step.args)  # type: ignore[no-untyped-call]
            except redis.RedisError as exc:
                error = exc
            except RedisClusterException as exc:  # no node of the cluster answers: an outage like any other
                error = redis.ConnectionError(str(exc))
        elif isinstance(step, Transaction):
            try:
                apipe = client.pipeline(transaction=True)
                for command in step.commands:
                    apipe.execute_command(*command.args)
                reply = await apipe.execute()
            except redis.RedisError as exc:
                error = exc
            except RedisClusterException as exc:  # no node of the cluster answers: an outage like any other
                error = redis.ConnectionError(str(exc))
        elif isinstance(step, Replicated):
            try:
                reply = await _async_replicated(client, step)
            except redis.RedisError as exc:
                error = exc
            except RedisClusterException as exc:  # no node of the cluster answers: an outage like any other
                error = redis.ConnectionError(str(exc))
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        else:
            yield step.value


def run_sync(client: redis.Redis, op: Op[R]) -> R:
    """Run ``op`` to its end on a sync client and return its result (it must not emit)."""
    holder = _Result(op)
    for value in iterate_sync(client, holder.op()):
        raise TypeError(f"operation emitted {value!r}; use iterate_sync")
    return cast(R, holder.value)


async def run_async(client: aredis.Redis, op: Op[R]) -> R:
    """Run ``op`` to its end on an asyncio client and return its result (it must not emit)."""
    holder = _Result(op)
    async for value in iterate_async(client, holder.op()):
        raise TypeError(f"operation emitted {value!r}; use iterate_async")
    return cast(R, holder.value)


REPLICATED_TRIES = 3
"""Tries of a replicated write on a cluster whose topology moved (MOVED/ASK, or a node gone): the
client re-reads the slot map between tries. Safe: every such write is idempotent."""


def replicated(client: redis.Redis, key: str, queue: Callable[[Any], Any], replicas: int, timeout_ms: int) -> list[Any]:
    """Run what ``queue(pipe)`` adds to a pipeline, then ``WAIT replicas timeout_ms``, on one connection
    of the node that owns ``key`` (the writes and the WAIT must share it); returns the replies. A reply
    that is an error is raised; fewer replicas than asked raise :func:`no_replicas`."""
    for attempt in range(1, REPLICATED_TRIES + 1):
        pipe = node_client(client, key).pipeline(transaction=False)
        queue(pipe)
        pipe.execute_command("WAIT", replicas, timeout_ms)  # type: ignore[no-untyped-call]
        try:
            *replies, acked = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError):
            if attempt == REPLICATED_TRIES or not _is_cluster_client(client):
                raise
            client.nodes_manager.initialize()  # type: ignore[attr-defined]
            continue
        moved = any(isinstance(r, redis.exceptions.AskError) for r in replies)  # MovedError is one too
        if moved and attempt < REPLICATED_TRIES and _is_cluster_client(client):
            client.nodes_manager.initialize()  # type: ignore[attr-defined]
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        _check_replicas(int(acked), replicas, key, timeout_ms)
        return replies
    raise AssertionError("unreachable")


async def _async_replicated(client: aredis.Redis, step: Replicated) -> Any:
    """:func:`replicated` for asyncio clients, for one command: on Redis Cluster the two commands go
    down one connection of the key's node (``ClusterNode.execute_pipeline``)."""
    for attempt in range(1, REPLICATED_TRIES + 1):
        try:
            if _is_cluster_client(client):
                node = client.get_node_from_key(step.key)  # type: ignore[attr-defined]
                wait = PipelineCommand(1, "WAIT", step.replicas, step.timeout_ms)
                commands = [PipelineCommand(0, *step.command.args), wait]
                await node.execute_pipeline(commands)
                first, acked = commands[0].result, commands[1].result
                for command in commands:
                    if isinstance(command.result, (redis.ConnectionError, redis.TimeoutError)):
                        raise command.result
            else:
                pipe = client.pipeline(transaction=False)
                pipe.execute_command(*step.command.args)
                pipe.execute_command("WAIT", step.replicas, step.timeout_ms)
                first, acked = await pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError):
            if attempt == REPLICATED_TRIES or not _is_cluster_client(client):
                raise
            await client.nodes_manager.initialize()  # type: ignore[attr-defined]
            continue
        if isinstance(first, redis.exceptions.AskError) and attempt < REPLICATED_TRIES:
            await client.nodes_manager.initialize()  # type: ignore[attr-defined]
            continue
        for result in (first, acked):
            if isinstance(result, Exception):
                raise result
        _check_replicas(int(cast(int, acked)), step.replicas, step.key, step.timeout_ms)
        return first
    raise AssertionError("unreachable")


def _check_replicas(acked: int, replicas: int, key: str, timeout_ms: int) -> None:
    """``NOREPLICAS`` (a ``redis.ResponseError`` that :func:`~chorus_client.outage.server_state`
    classifies as an outage) when fewer than ``replicas`` acknowledged the writes to ``key``."""
    if acked < replicas:
        raise redis.ResponseError(f"NOREPLICAS {acked} of {replicas} replicas acknowledged {key} in {timeout_ms} ms")


def _queue(command: Command, pipe: Any) -> None:
    pipe.execute_command(*command.args)


def _is_cluster_client(client: Any) -> bool:
    return hasattr(client, "get_node_from_key")


def node_client(client: redis.Redis, key: str) -> redis.Redis:
    """A client of the node that owns ``key``: ``client`` itself, or on Redis Cluster the node's own
    client (so a pipeline on it is one connection to that node)."""
    find = getattr(client, "get_node_from_key", None)
    if find is None:
        return client
    node = find(key)
    return cast(redis.Redis, node.redis_connection)


def quiet(op: Op[R]) -> Op[R]:
    """``op`` with what it emits dropped: its other steps pass through, its result is returned."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(reply)
        except StopIteration as stop:
            return cast(R, stop.value)
        reply, error = None, None
        if isinstance(step, Emit):
            continue
        try:
            reply = yield step
        except Exception as exc:  # handed to ``op``, which decides
            error = exc


class _Result:
    """Keeps the return value of an operation that a driver runs as a plain iteration."""

    def __init__(self, op: Op[Any]) -> None:
        self._op = op
        self.value: Any = None

    def op(self) -> Op[None]:
        self.value = yield from self._op
