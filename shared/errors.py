"""The server's errors: the client's hierarchy plus model errors, and how each is answered.

Every error a user can meet derives from :class:`ChorusError` (defined with the
rest of the client-facing tree in :mod:`chorus_client.errors`, re-exported
here). The server adds::

    ChorusError
    └── ModelError               model store problems
        ├── ModelNotInstalled    (model_id, hint)
        └── ModelIntegrityError  (path, reason)

and :data:`ERROR_TABLE`: every class -> (exit code, HTTP status, OpenAI error code),
used by the CLI and the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_client.errors import (
    ChorusError,
    ConfigError,
    InvalidRequest,
    LaneNotAllowed,
    NoWorkers,
    ProtocolError,
    QueueFull,
    RedisAuthError,
    RedisUnavailable,
    RequestCancelled,
    RequestFailed,
    RequestNotFound,
    RequestTooLarge,
    StreamTimeout,
    TenantMoved,
    TextError,
    UnknownTenant,
    UnknownVoice,
)

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
    "TenantMoved",
    "TextError",
    "UnknownTenant",
    "UnknownVoice",
    "error_kind",
]


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
    (TenantMoved, ErrorKind(EX_TEMPFAIL, 503, "unavailable")),
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
