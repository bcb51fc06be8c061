"""HTTP edges of the gateway: errors in OpenAI's shape, bounded JSON bodies, and request validation.

Everything a client sends is checked here before it reaches the broker, so a bad
value is a 400 that names the field (never a 500): types, ranges, non-finite
numbers, nesting depth, body size (413), and the sample rates each encoder takes.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from broker.producer import MAX_SPEED, MIN_SPEED, PRIORITIES
from chorus_client.listen import parse_position
from gateway.encode import FORMATS, supported_rates
from shared.errors import ChorusError, ProtocolError, QueueFull, RedisAuthError, RedisUnavailable, error_kind

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "HttpError",
    "SpeechParams",
    "audio_format",
    "error_response",
    "http_error",
    "json_depth",
    "read_json",
    "stream_position",
    "unavailable",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Largest request body (bytes). 64 KB of text is at most ~400 KB of JSON even fully escaped."""
MAX_JSON_DEPTH = 32
MAX_DEADLINE_S = 24 * 3600.0


class HttpError(Exception):
    """An answer other than success: status, message, OpenAI error ``code`` and extra headers."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def error_response(exc: HttpError) -> JSONResponse:
    """OpenAI's error body: ``{"error": {"message", "type", "code"}}``."""
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    body = {"error": {"message": exc.message, "type": kind, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def unavailable() -> HttpError:
    """503 for any Redis trouble (an outage, an exhausted pool, refused credentials): the details
    (URL, cause) are the operator's and go to the log, the client is told to retry."""
    return HttpError(503, "the queue is unavailable; retry shortly", "unavailable", {"Retry-After": "1"})


def http_error(exc: ChorusError) -> HttpError:
    """The HTTP answer to a chorus error, from :data:`shared.errors.ERROR_TABLE`: 429 and 503 are
    retryable (with ``Retry-After``); an error the table does not know is a 500 and is logged."""
    kind = error_kind(exc)
    headers: dict[str, str] = {}
    message = str(exc)
    if isinstance(exc, QueueFull):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s or 1)))
    elif isinstance(exc, (RedisUnavailable, RedisAuthError)):
        log.warning("redis: %s", exc)
        return unavailable()
    elif kind.http_status == 503:
        headers["Retry-After"] = "1"
    elif kind.http_status >= 500:
        log.error("unexpected %s: %s", type(exc).__name__, exc)
        message = "internal error"
    return HttpError(kind.http_status, message, kind.code, headers)


def json_depth(obj: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


async def read_json(request: Request, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object, read at most ``max_bytes`` far: 413 beyond, 400 when not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HttpError(413, f"the body is larger than {max_bytes} bytes", "body_too_large")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise HttpError(413, f"the body is larger than {max_bytes} bytes", "body_too_large")
            chunks.append(chunk)
    except ClientDisconnect:  # the client gave up mid-upload: nobody reads the answer
        raise HttpError(400, "the client disconnected before sending the whole body", "client_disconnected") from None
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HttpError(400, "the body must be JSON (UTF-8)", "invalid_json") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object", "invalid_json")
    if json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise HttpError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels", "invalid_json")
    return body


def _invalid(message: str) -> HttpError:
    return HttpError(400, message, "invalid_input")


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"'{name}' must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        raise _invalid(f"'{name}' must be a finite number") from None
    if not math.isfinite(number):
        raise _invalid(f"'{name}' must be a finite number")
    return number


def _voice(value: Any) -> str | None:
    """OpenAI sends a voice name, or (newer clients) an object ``{"id": name}``; "" means not given."""
    if isinstance(value, dict):
        value = value.get("id")
        if not isinstance(value, str):
            raise _invalid("'voice' as an object must carry a string 'id'")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid("'voice' must be a string or an object with an 'id'")
    return value


def audio_format(source: Any, default: str) -> tuple[str, int | None]:
    """``(format, output rate or None)`` from a JSON body or a query string."""
    raw = source.get("response_format") or source.get("format") or default
    if not isinstance(raw, str) or raw.lower() not in FORMATS:
        raise HttpError(400, f"response_format must be one of {', '.join(FORMATS)}", "invalid_format")
    fmt = raw.lower()
    rate = source.get("sample_rate")
    if rate is None or rate == "":
        return fmt, None
    plain = isinstance(rate, str) and rate.isascii() and rate.isdigit() and len(rate) <= 6
    if isinstance(rate, bool) or not (isinstance(rate, int) or plain):
        raise _invalid("sample_rate must be an integer (Hz)")
    out_rate = int(rate)
    if not 8000 <= out_rate <= 48000:
        raise _invalid("sample_rate must be within 8000..48000")
    allowed = supported_rates(fmt)
    if allowed is not None and out_rate not in allowed:
        raise _invalid(f"{fmt} can be encoded at {', '.join(map(str, allowed))} Hz, not {out_rate}")
    return fmt, out_rate


@dataclass(frozen=True)
class SpeechParams:
    """A validated synthesis request (the body of ``/v1/audio/speech``, ``/v1/requests`` or a WebSocket message)."""

    text: str
    voice: str | None
    priority: str
    speed: float
    deadline_s: float | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> SpeechParams:
        text = body.get("input")
        if not isinstance(text, str):
            raise _invalid("'input' must be a string")
        priority = body.get("priority", "interactive")
        if priority not in PRIORITIES:
            raise _invalid(f"'priority' must be one of {', '.join(PRIORITIES)}")
        speed = _number(body, "speed")
        if speed is not None and not MIN_SPEED <= speed <= MAX_SPEED:
            raise _invalid(f"'speed' must be within {MIN_SPEED}..{MAX_SPEED}")
        deadline = _number(body, "deadline_s")
        if deadline is not None and not 0 < deadline <= MAX_DEADLINE_S:
            raise _invalid(f"'deadline_s' must be within (0, {MAX_DEADLINE_S:.0f}] seconds")
        return cls(text, _voice(body.get("voice")), priority, 1.0 if speed is None else speed, deadline)


def stream_position(value: str) -> str:
    """A Last-Event-ID (an audio stream position ``<ms>-<seq>`` or ``<ms>-<seq>/<k>``, see
    :func:`chorus_client.listen.position_of`); 400 for anything else."""
    try:
        parse_position(value)
    except ProtocolError:
        raise _invalid("Last-Event-ID must be an event id this server sent (<ms>-<seq> or <ms>-<seq>/<k>)") from None
    return value
