"""The one exception hierarchy of chorus.

Every error a user can meet derives from :class:`ChorusError` and carries the
fields needed to act on it::

    ChorusError
    ├── ConfigError              bad setting, DSN or environment value
    ├── RedisUnavailable         Redis cannot serve now: down, timing out, or a server state (url, code)
    ├── RedisAuthError           Redis refused the credentials (url)
    ├── ProtocolError            malformed wire data (field, reason)
    ├── TextError                text that cannot be synthesised (reason)
    ├── InvalidRequest           a request option out of its range (field, reason)
    ├── UnknownVoice             voice not in the catalog (voice, known)
    ├── UnknownTenant            tenant name invalid or refused by policy (tenant, reason)
    ├── QueueFull                over the tenant's queue cap (tenant, limit, queued, retry_after_s)
    ├── RequestTooLarge          more segments than the tenant's queue cap holds (tenant, limit, requested)
    ├── LaneNotAllowed           the tenant may not use that lane (tenant, lane, allowed)
    ├── RequestNotFound          no such request (request_id)
    ├── RequestFailed            the request ended with an error frame (request_id, code)
    │   └── RequestCancelled     it was cancelled (code "cancelled")
    ├── StreamTimeout            no frame arrived in time (request_id, waited_s)
    ├── NoWorkers                nothing is serving the queue (url)
    └── ModelError               model store problems
        ├── ModelNotInstalled    (model_id, hint)
        └── ModelIntegrityError  (path, reason)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ERROR_TABLE",
    "EX_TEMPFAIL",
    "ChorusError",
    "ConfigError",
    "ErrorKind",
    "InvalidRequest",
    "LaneNotAllowed",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotInstalled",
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
    "TextError",
    "UnknownTenant",
    "UnknownVoice",
    "error_kind",
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
    def __init__(self, voice: str, known: list[str]) -> None:
        self.voice = voice
        self.known = known
        super().__init__(f"unknown voice {voice!r}; known voices: {', '.join(known)} (see `chorus voices`)")


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


class ModelError(ChorusError):
    """Problems with the model store."""


class ModelNotInstalled(ModelError):
    def __init__(self, model_id: str, hint: str) -> None:
        self.model_id = model_id
        self.hint = hint
        super().__init__(f"model {model_id!r} is not installed: {hint}")


class ModelIntegrityError(ModelError):
    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"model file {path}: {reason}")


EX_TEMPFAIL = 75
"""Exit status (sysexits' EX_TEMPFAIL) of what a retry later may cure: backpressure, an outage."""


@dataclass(frozen=True)
class ErrorKind:
    """How an error is answered: the CLI's exit code, the HTTP status and OpenAI error code."""

    exit_code: int
    """75 (EX_TEMPFAIL) when retrying later may succeed, 1 otherwise."""
    http_status: int
    code: str


ERROR_TABLE: tuple[tuple[type[ChorusError], ErrorKind], ...] = (
    (QueueFull, ErrorKind(EX_TEMPFAIL, 429, "queue_full")),
    (RedisUnavailable, ErrorKind(EX_TEMPFAIL, 503, "unavailable")),
    (NoWorkers, ErrorKind(EX_TEMPFAIL, 503, "no_workers")),
    (StreamTimeout, ErrorKind(EX_TEMPFAIL, 504, "timeout")),
    (RequestTooLarge, ErrorKind(1, 413, "request_too_large")),
    (UnknownTenant, ErrorKind(1, 403, "forbidden")),
    (LaneNotAllowed, ErrorKind(1, 403, "forbidden")),
    (RequestNotFound, ErrorKind(1, 404, "not_found")),
    (TextError, ErrorKind(1, 400, "invalid_input")),
    (UnknownVoice, ErrorKind(1, 400, "invalid_input")),
    (InvalidRequest, ErrorKind(1, 400, "invalid_input")),
    (ProtocolError, ErrorKind(1, 400, "invalid_input")),
    (RequestFailed, ErrorKind(1, 502, "request_failed")),
    (RedisAuthError, ErrorKind(1, 503, "unavailable")),
    (ModelError, ErrorKind(1, 503, "model_unavailable")),
    (ConfigError, ErrorKind(1, 500, "server_error")),
)
"""Every error class -> how the CLI and the gateway answer it; the first match wins (subclasses first)."""

_UNKNOWN = ErrorKind(1, 500, "internal_error")


def error_kind(exc: BaseException) -> ErrorKind:
    """The row of :data:`ERROR_TABLE` for ``exc``; an error not in it is a 500 (a bug: log it)."""
    for cls, kind in ERROR_TABLE:
        if isinstance(exc, cls):
            return kind
    return _UNKNOWN
