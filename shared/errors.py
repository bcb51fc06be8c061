"""The one exception hierarchy of chorus.

Every error a user can meet derives from :class:`ChorusError` and carries the
fields needed to act on it::

    ChorusError
    ├── ConfigError              bad setting, DSN or environment value
    ├── RedisUnavailable         Redis cannot be reached (url)
    ├── ProtocolError            malformed wire data (field, reason)
    ├── TextError                text that cannot be synthesised (reason)
    ├── UnknownVoice             voice not in the catalog (voice, known)
    ├── UnknownTenant            tenant name invalid (tenant, reason)
    ├── RequestNotFound          no such request (request_id)
    ├── RequestFailed            the request ended with an error frame (request_id, code)
    ├── StreamTimeout            no frame arrived in time (request_id, waited_s)
    ├── NoWorkers                nothing is serving the queue (url)
    └── ModelError               model store problems
        ├── ModelNotInstalled    (model_id, hint)
        └── ModelIntegrityError  (path, reason)
"""

from __future__ import annotations

__all__ = [
    "ChorusError",
    "ConfigError",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotInstalled",
    "NoWorkers",
    "ProtocolError",
    "RedisUnavailable",
    "RequestFailed",
    "RequestNotFound",
    "StreamTimeout",
    "TextError",
    "UnknownTenant",
    "UnknownVoice",
]


class ChorusError(Exception):
    """Root of every error chorus raises on purpose."""


class ConfigError(ChorusError):
    """A setting is missing or invalid."""


class RedisUnavailable(ChorusError):
    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"cannot reach Redis at {url}: {cause}; is redis-server running?")


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
