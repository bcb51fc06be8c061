"""The one exception hierarchy of chorus, as a client meets it.

Every error a user can meet derives from :class:`ChorusError` and carries the
fields needed to act on it::

    ChorusError
    ├── ConfigError              bad setting, DSN or environment value
    ├── RedisUnavailable         Redis cannot serve now: down, timing out, or a server state (url, code)
    ├── RedisAuthError           Redis refused the credentials (url)
    ├── ProtocolError            malformed wire data (field, reason)
    ├── TextError                text that cannot be synthesised (reason)
    ├── InvalidRequest           a request option out of its range (field, reason)
    ├── UnknownVoice             voice not in the catalog, or none for a segment's language (voice, known, lang)
    ├── UnknownTenant            tenant name invalid or refused by policy (tenant, reason)
    ├── QueueFull                over the tenant's queue cap (tenant, limit, queued, retry_after_s)
    ├── RequestTooLarge          more segments than the tenant's queue cap holds (tenant, limit, requested)
    ├── LaneNotAllowed           the tenant may not use that lane (tenant, lane, allowed)
    ├── RequestNotFound          no such request (request_id)
    ├── RequestFailed            the request ended with an error frame (request_id, code)
    │   └── RequestCancelled     it was cancelled (code "cancelled")
    ├── StreamTimeout            no frame arrived in time (request_id, waited_s)
    ├── TenantMoved              the tenant's forward entries loop or run too long (tenant, shard)
    └── NoWorkers                nothing is serving the queue (url)

The server adds its own subclasses (model errors) and the table that answers
each class with an exit code and an HTTP status (``shared.errors``).
"""

from __future__ import annotations

__all__ = [
    "ChorusError",
    "ConfigError",
    "InvalidRequest",
    "LaneNotAllowed",
    "NoWorkers",
    "ProtocolError",
    "QueueFull",
    "RedisAuthError",
    "RedisUnavailable",
    "RequestCancelled",
    "RequestFailed",
    "RequestNotFound",
    "RequestTooLarge",
    "StreamTimeout",
    "TenantMoved",
    "TextError",
    "UnknownTenant",
    "UnknownVoice",
]


class ChorusError(Exception):
    """Root of every error chorus raises on purpose."""


class ConfigError(ChorusError):
    """A setting is missing or invalid."""


class RedisUnavailable(ChorusError):
    """A temporary failure: the server is down or slow, or says it cannot serve now (``code``:
    ``OOM``, ``READONLY``, ``BUSY``, ``LOADING`` …). Retry later (the CLI exits 75)."""

    def __init__(self, url: str, cause: str, code: str | None = None) -> None:
        self.url = url
        self.cause = cause
        self.code = code
        if code is None:
            super().__init__(f"cannot reach Redis at {url}: {cause}; is redis-server running?")
        else:
            hint = _STATE_HINTS.get(code, "the server cannot serve this now; retry later")
            super().__init__(f"Redis at {url} cannot serve now ({cause}); {hint}")


_STATE_HINTS = {
    "OOM": "Redis reached maxmemory (chorus needs maxmemory-policy noeviction and room to write); retry later",
    "READONLY": "this is a replica (after a failover?); point chorus at the primary",
    "BUSY": "a long script is running on the server; retry later",
    "LOADING": "Redis is loading its data set; retry in a moment",
    "MASTERDOWN": "the replica lost its primary; retry later",
    "MISCONF": "Redis cannot persist (stop-writes-on-bgsave-error); check its disk",
    "NOPERM": "the ACL user lacks a permission chorus needs (see docs/OPERATIONS.md)",
}


class RedisAuthError(ChorusError):
    """Redis refused the credentials: not temporary; fix the URL's user name or password."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"Redis at {url} refused the credentials ({cause}); check the user and password in the URL")


class ProtocolError(ChorusError):
    """Wire data that does not follow docs/PROTOCOL.md."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"protocol error in {field!r}: {reason}")


class TextError(ChorusError):
    """Text that cannot be accepted for synthesis (empty, too long, not UTF-8)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidRequest(ChorusError):
    """A request option (priority, speed, deadline …) outside what chorus accepts."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class UnknownVoice(ChorusError):
    """No such voice; or, with ``lang``, no voice of that language for a request that named none."""

    def __init__(self, voice: str, known: list[str], lang: str | None = None) -> None:
        self.voice = voice
        self.known = known
        self.lang = lang
        if lang is None:
            super().__init__(f"unknown voice {voice!r}; known voices: {', '.join(known)} (see `chorus voices`)")
        else:
            super().__init__(
                f"no voice for language {lang!r} (a segment of the text is in it and the request names no "
                f"voice, and no voice of it is marked as its default); known voices: {', '.join(known) or 'none'}: "
                f"name one, or run workers (v1.3 or later) with a model for {lang!r}"
            )


class UnknownTenant(ChorusError):
    def __init__(self, tenant: str, reason: str) -> None:
        self.tenant = tenant
        self.reason = reason
        super().__init__(f"tenant {tenant!r}: {reason}")


class QueueFull(ChorusError):
    """Backpressure: the request would put the tenant over its queued-segment cap.

    Nothing of the request was enqueued. ``retry_after_s`` estimates when the
    tenant's queue will have room, from its service rate over the last minute
    (None when nothing of it was served in that minute).
    """

    def __init__(self, tenant: str, limit: int, queued: int, requested: int, retry_after_s: float | None) -> None:
        self.tenant = tenant
        self.limit = limit
        self.queued = queued
        self.requested = requested
        self.retry_after_s = retry_after_s
        when = "later" if retry_after_s is None else f"in about {retry_after_s:.1f}s"
        super().__init__(
            f"queue full for tenant {tenant!r}: {queued} segments queued + {requested} requested "
            f"> limit {limit}; nothing was enqueued; retry {when}"
        )


class RequestTooLarge(ChorusError):
    """The request alone has more segments than the tenant may ever have queued: not retryable.

    Nothing was enqueued; split the text into smaller requests or raise the tenant's
    ``max_queued`` (``chorus tenants set``).
    """

    def __init__(self, tenant: str, limit: int, requested: int) -> None:
        self.tenant = tenant
        self.limit = limit
        self.requested = requested
        super().__init__(
            f"request of {requested} segments can never fit tenant {tenant!r}'s queue limit of {limit} "
            "segments (max_queued); nothing was enqueued; send smaller requests"
        )


class LaneNotAllowed(ChorusError):
    def __init__(self, tenant: str, lane: str, allowed: list[str]) -> None:
        self.tenant = tenant
        self.lane = lane
        self.allowed = allowed
        super().__init__(f"tenant {tenant!r} may not use lane {lane!r}; allowed: {', '.join(allowed) or 'none'}")


class RequestNotFound(ChorusError):
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"no such request {request_id!r} (unknown, expired or malformed id)")


class RequestFailed(ChorusError):
    """The request's audio stream carried an error frame."""

    def __init__(self, request_id: str, code: str, message: str, segment: int | None) -> None:
        self.request_id = request_id
        self.code = code
        self.message = message
        self.segment = segment
        where = "" if segment is None else f" (segment {segment})"
        super().__init__(f"request {request_id} failed{where}: {code}: {message}")


class RequestCancelled(RequestFailed):
    """The request was cancelled (``chorus cancel`` or :func:`broker.cancel.cancel`)."""

    def __init__(self, request_id: str, heard_segments: int) -> None:
        super().__init__(request_id, "cancelled", f"cancelled after {heard_segments} complete segments", None)


class StreamTimeout(ChorusError):
    def __init__(self, request_id: str, waited_s: float) -> None:
        self.request_id = request_id
        self.waited_s = waited_s
        super().__init__(
            f"no audio for request {request_id} within {waited_s:.1f}s; "
            "is a worker attached to this Redis (`chorus worker`)?"
        )


class NoWorkers(ChorusError):
    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"no live worker on {url}; start one with `chorus worker --redis {url}`")


class TenantMoved(ChorusError):
    """The enqueue script answered ``WRONGSHARD``: the tenant lives in ``shard``, not the one tried.

    Producers follow it by themselves (``chorus_client.placement``); it reaches a caller only when
    the forwards did not end within ``MAX_SHARD_HOPS`` (an operator's loop, or a move racing the enqueue).
    """

    def __init__(self, tenant: str, shard: str) -> None:
        self.tenant = tenant
        self.shard = shard
        super().__init__(f"tenant {tenant!r} lives in shard {shard}, and its forwards did not end; retry")
