"""Enqueueing a request: validate and segment the text, run the enqueue script, write the stream's header.

:func:`prepare` does everything that needs no Redis: options checked, text cut into
segments (:mod:`chorus_client.segment`), each segment's lane and weighted
characters, the script's arguments, the header frame. :func:`enqueue` is the
sans-I/O operation (:mod:`chorus_client.drive`) that sends it: the script, retried
after a lost connection or a timeout (safe: the script is idempotent by request
id), then the header frame with the stream's expiry in one MULTI. A refusal of the
script is mapped through :data:`REFUSALS` to a typed error; a ``QueueFull`` carries
a retry-after from the tenant's service rate over the last minute.

A voice is described by a :class:`Voice` (language and sample rate): the server
takes it from its catalog, a client from the ``voices`` hash that workers write
(:func:`lookup_voice`). A request that names no voice is given a :class:`VoiceTable`
instead (the catalog's, or the hash's read by a :class:`VoiceCache`): each segment
then gets the default voice of its language (:mod:`chorus_client.language`). The
request keeps one sample rate, its first segment's voice's (the header's); a segment
whose voice has another rate carries the request's in its payload (``sr``) and the
worker resamples it.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from chorus_client.constants import LANES, PENDING_AUDIO_TTL_S, REQUEST_TTL_S, VOICES_TTL_S, Lane
from chorus_client.drive import Command, Op, Sleep, Transaction
from chorus_client.errors import (
    ChorusError,
    InvalidRequest,
    LaneNotAllowed,
    ProtocolError,
    QueueFull,
    RequestTooLarge,
    TenantMoved,
    TextError,
    UnknownTenant,
    UnknownVoice,
)
from chorus_client.keys import GROUP, Keys, new_request_id, validate_tenant
from chorus_client.language import segment_languages
from chorus_client.outage import server_state, translate
from chorus_client.protocol import HeaderFrame, SegmentJob, encode_frame, encode_segment
from chorus_client.rates import retry_after, tenant_rate, window
from chorus_client.scripts import ENQUEUE
from chorus_client.segment import MAX_CHARS, presegmented, segment_text, weight

__all__ = [
    "ENQUEUE_TRIES",
    "MAX_DEADLINE_S",
    "MAX_SPEED",
    "MIN_SPEED",
    "PRIORITIES",
    "REFUSALS",
    "EnqueueResult",
    "PreparedRequest",
    "Voice",
    "VoiceCache",
    "VoiceTable",
    "enqueue",
    "lane_number",
    "lookup_voice",
    "min_segments",
    "parse_refusal",
    "prepare",
    "voice_table",
    "voices_from_hash",
]

PRIORITIES = (Lane.INTERACTIVE.value, Lane.BATCH.value)
"""What a request's ``priority`` may be: the lanes a producer chooses (``rt`` follows from ``interactive``)."""
MIN_SPEED, MAX_SPEED = 0.5, 2.0
MAX_DEADLINE_S = float(REQUEST_TTL_S)
"""Longest deadline a request may set: no longer than its metadata lives."""
ENQUEUE_TRIES = 3
"""Tries of the enqueue script after a lost connection or a timeout: safe, since the script is
idempotent by request id (a retry of a call that ran answers success and writes nothing)."""
RETRY_STEP_S = 0.05
"""Pause before the n-th retry: n x this."""


@dataclass(frozen=True)
class Voice:
    """What a producer must know of a voice: its language (which frontend reads the text) and the
    sample rate of its audio (in the header frame)."""

    name: str
    lang: str
    sample_rate: int
    model: str = ""


@dataclass(frozen=True)
class VoiceTable:
    """What a request that names no voice chooses from: voices by name, and each language's default."""

    voices: Mapping[str, Voice]
    defaults: Mapping[str, str] = field(default_factory=dict)
    """Language -> the name of its default voice."""

    def named(self, name: str) -> Voice:
        """The voice called ``name``; UnknownVoice listing the table's voices otherwise."""
        try:
            return self.voices[name]
        except KeyError:
            raise UnknownVoice(name, sorted(self.voices)) from None

    def for_lang(self, lang: str) -> Voice:
        """The default voice of ``lang``; UnknownVoice (with ``lang``) when the table has none."""
        voice = self.voices.get(self.defaults.get(lang, ""))
        if voice is None or voice.lang != lang:
            raise UnknownVoice("", sorted(self.voices), lang)
        return voice


def voices_from_hash(raw: Mapping[Any, Any]) -> VoiceTable:
    """The table of a ``voices`` hash as ``HGETALL`` returns it (field -> JSON, bytes or str).

    A language's default is its voice whose JSON has ``"default": true`` (workers from v1.3 mark
    the catalog's default per language), the first by name when several do. A language none of
    whose voices is marked has no default: only v1.3 workers mark them, and only they resample a
    segment to its request's rate, so a client does not choose voices by language for workers that
    would publish two rates in one stream. An entry that is not a voice description is left out:
    it can be neither chosen nor named through this table."""
    voices: dict[str, Voice] = {}
    marked: dict[str, str] = {}
    for key in sorted(raw, key=lambda k: k.decode() if isinstance(k, bytes) else str(k)):
        name = key.decode() if isinstance(key, bytes) else str(key)
        try:
            data = json.loads(raw[key])
            if not isinstance(data["lang"], str):
                continue
            voice = Voice(name, data["lang"], int(data["sample_rate"]), str(data.get("model", "")))
        except (ValueError, KeyError, TypeError):
            continue
        voices[name] = voice
        if data.get("default") is True:
            marked.setdefault(voice.lang, name)
    return VoiceTable(voices, marked)


def voice_table(keys: Keys) -> Op[VoiceTable]:
    """Every voice the workers announced (``HGETALL`` of ``keys.voices()``), as a table."""
    raw = yield Command(("HGETALL", keys.voices()))
    if isinstance(raw, list):  # a reply not parsed into a dict (RESP2 without the callback)
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    return voices_from_hash(raw or {})


class VoiceCache:
    """A producer's copy of the ``voices`` hash as a :class:`VoiceTable`, read again once it is
    older than ``ttl_s`` (not thread-safe; one per client). ``url`` names the server in errors."""

    def __init__(
        self, keys: Keys, *, url: str = "", ttl_s: float = VOICES_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.keys = keys
        self.url = url
        self.ttl_s = ttl_s
        self._clock = clock
        self._table: VoiceTable | None = None
        self._at = float("-inf")

    def table(self) -> Op[VoiceTable]:
        now = self._clock()
        if self._table is None or now - self._at >= self.ttl_s:
            try:
                self._table = yield from voice_table(self.keys)
            except redis.RedisError as exc:
                raise translate(exc, self.url) from exc
            self._at = now
        return self._table


@dataclass(frozen=True)
class EnqueueResult:
    request_id: str
    segments: int
    sample_rate: int
    voices: tuple[str, ...] = ()
    """Each segment's voice, in order."""


@dataclass(frozen=True)
class PreparedRequest:
    request_id: str
    keys: list[str]
    args: list[Any]
    audio_key: str
    header: bytes
    segments: int
    sample_rate: int
    tenant: str
    voices: tuple[str, ...] = ()
    """Each segment's voice, in order (the first is the request's: header, metadata)."""


_NOT_ALNUM = re.compile(r"[\W_]")
_WIDE_ALNUM = re.compile(r"[^\W_\x00-\u2e7f]")
"""Letters and digits from U+2E80 on (CJK and beyond): they weigh 1, the others 0.4."""


def min_segments(text: str | list[str]) -> int:
    """A lower bound of the segments :func:`prepare` makes of ``text`` (0 when it cannot tell cheaply).

    A letter or digit from U+2E80 on (CJK) weighs 1, any other 0.4, and a segment holds at most
    ``MAX_CHARS`` (100) weighted characters; markup (``<break …/>``) has letters that are not spoken, so text with
    ``<`` is not judged. A C-speed regex scan: a millisecond for 64 KB.
    """
    if not isinstance(text, str):
        return len(text)
    if "<" in text:
        return 0
    letters = len(text) - len(_NOT_ALNUM.findall(text))
    wide = len(_WIDE_ALNUM.findall(text)) if letters else 0
    return math.ceil(((letters - wide) * 2 + wide * 5) / 5 / MAX_CHARS)


def lane_number(priority: str, seq: int) -> int:
    """The lane of segment ``seq`` as ``enqueue.lua`` takes it: its 1-based position in :data:`LANES`."""
    if priority == Lane.BATCH:
        return LANES.index(Lane.BATCH) + 1
    # the first segment of an interactive request is real-time: it decides first audio
    return LANES.index(Lane.RT if seq == 0 else Lane.INTERACTIVE) + 1


def prepare(
    text: str | list[str] | tuple[str, ...] | bytes,
    *,
    tenant: str,
    keys: Keys,
    voice: Voice | VoiceTable,
    priority: str = Lane.INTERACTIVE.value,
    speed: float = 1.0,
    deadline_s: float | None = None,
    request_id: str | None = None,
) -> PreparedRequest:
    """Validate and segment a request; nothing touches Redis here.

    ``text`` is a string that chorus segments, or a list of strings that the
    caller has already cut into segments (one model call each, in order).
    ``priority`` is one of :data:`PRIORITIES`; ``speed`` a rate factor within
    [MIN_SPEED, MAX_SPEED]; ``deadline_s`` seconds from the enqueue (by the Redis
    server's clock) after which unserved segments are dropped.

    ``voice`` is the request's voice (every segment's), or a :class:`VoiceTable` from which each
    segment gets the default voice of its language (:func:`chorus_client.language.segment_languages`).
    The request's sample rate, in the header, is its first segment's voice's; a segment whose voice
    has another rate carries the request's as ``sr``, and the worker resamples it.

    Raises :class:`~chorus_client.errors.UnknownTenant` for a tenant name outside the grammar,
    :class:`~chorus_client.errors.InvalidRequest` for a bad option,
    :class:`~chorus_client.errors.TextError` for text that cannot be spoken, and
    :class:`~chorus_client.errors.UnknownVoice` when the table has no voice for a segment's language.
    """
    validate_tenant(tenant)
    if priority not in PRIORITIES:
        raise InvalidRequest("priority", f"must be one of {PRIORITIES}, got {priority!r}")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidRequest("speed", f"must be within [{MIN_SPEED}, {MAX_SPEED}], got {speed}")
    if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and 0 < deadline_s <= MAX_DEADLINE_S):
        raise InvalidRequest("deadline_s", f"must be within (0, {MAX_DEADLINE_S:.0f}] seconds, got {deadline_s!r}")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TextError(f"text is not valid UTF-8 (byte {exc.start}): {exc.reason}") from None
    segments = presegmented(list(text)) if isinstance(text, (list, tuple)) else segment_text(text)
    if isinstance(voice, VoiceTable):
        chosen = [voice.for_lang(lang) for lang in segment_languages([s.text for s in segments])]
    else:
        chosen = [voice] * len(segments)
    first = chosen[0]  # the request's voice: its rate is the header's, and every segment's audio's
    rate = first.sample_rate
    rid = request_id or new_request_id(keys.shard)
    now_ms = int(time.time() * 1000)
    # relative: the script adds it to the Redis server's clock, so a producer's clock does not matter
    within_ms = max(1, int(deadline_s * 1000)) if deadline_s else 0
    args: list[Any] = [tenant, rid, first.name, now_ms, within_ms, REQUEST_TTL_S, GROUP, len(segments)]
    for seq, (seg, v) in enumerate(zip(segments, chosen, strict=True)):
        sr = None if v.sample_rate == rate else rate  # the worker resamples to the request's rate
        job = SegmentJob(rid, seq, seg.text, v.name, v.lang, speed, seg.pause_ms, now_ms, sr)
        args += [lane_number(priority, seq), max(1, round(weight(seg.text))), encode_segment(job)]
    key_list = keys.enqueue_keys(tenant, keys.request(rid))
    header = encode_frame(HeaderFrame(rid, len(segments), first.name, rate, tenant))
    names = tuple(v.name for v in chosen)
    return PreparedRequest(rid, key_list, args, keys.audio(rid), header, len(segments), rate, tenant, names)


# -- refusals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A refusal of ``enqueue.lua`` (its error reply's first word and the words after it)."""

    kind: str
    words: list[str]


def _queue_full(tenant: str, words: list[str], requested: int, rate: float | None) -> ChorusError:
    limit, queued = int(words[0]), int(words[1])
    return QueueFull(tenant, limit, queued, requested, retry_after(limit, queued, requested, rate or 0.0))


REFUSALS: dict[str, Callable[[str, list[str], int, float | None], ChorusError]] = {
    "QUEUEFULL": _queue_full,
    "TOOLARGE": lambda tenant, words, requested, _: RequestTooLarge(tenant, int(words[0]), requested),
    "LANE": lambda tenant, words, _, __: LaneNotAllowed(tenant, words[0], words[1].split(",") if words[1:] else []),
    "NOTENANT": lambda tenant, _, __, ___: UnknownTenant(
        tenant, "not configured, and the default policy rejects unknown tenants (add it with `chorus tenants set`)"
    ),
    "DUPLICATE": lambda _, words, __, ___: InvalidRequest("request_id", "already used by another request"),
    "BADARGS": lambda _, words, __, ___: ProtocolError("enqueue arguments", " ".join(words)),
    "BADPOLICY": lambda tenant, words, _, __: UnknownTenant(tenant, "its policy is not valid: " + " ".join(words)),
    "WRONGSHARD": lambda tenant, words, __, ___: TenantMoved(tenant, words[0] if words else "?"),
    "BADSTATE": lambda _, words, __, ___: ChorusError(
        "the shard's state in Redis is damaged (" + " ".join(words) + "); nothing was enqueued: an operator must "
        "repair the key (docs/OPERATIONS.md)"
    ),
}
"""Every refusal of ``enqueue.lua`` -> the error a producer raises (tenant, the words after the
refusal's name, segments requested, the tenant's service rate in segments/s or None)."""


def parse_refusal(exc: BaseException) -> Refusal | None:
    """The refusal ``enqueue.lua`` answered with (a name in :data:`REFUSALS`), or None for any other error."""
    if not isinstance(exc, redis.ResponseError):
        return None
    words = str(exc).split()
    # Redis may prefix a script's error with "ERR" or the script location
    for i, word in enumerate(words[:3]):
        if word in REFUSALS:
            return Refusal(word, words[i + 1 :])
    return None


def service_rate(keys: Keys, tenant: str) -> Op[float]:
    """Segments per second served to ``tenant`` over the last minute (from the time buckets)."""
    names, span = window(keys)
    buckets = []
    for name in names:
        buckets.append((yield Command(("HGETALL", name))))
    return tenant_rate(buckets, tenant, span)


def _retryable(exc: BaseException) -> bool:
    """Whether the call may not have reached the server's answer (the script may or may not have run),
    or its writes were not confirmed on enough replicas in time: safe to repeat, it is idempotent."""
    if server_state(exc) == "NOREPLICAS":
        return True
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) and not isinstance(
        exc, redis.AuthenticationError
    )


def lookup_voice(keys: Keys, name: str) -> Op[Voice]:
    """The voice as the workers announced it (``keys.voices()``); UnknownVoice when none serves it."""
    raw = yield Command(("HGET", keys.voices(), name))
    if raw is None:
        known = yield Command(("HKEYS", keys.voices()))
        names = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in known or [])
        raise UnknownVoice(name, names)
    try:
        data = json.loads(raw)
        return Voice(name, str(data["lang"]), int(data["sample_rate"]), str(data.get("model", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"{keys.voices()}[{name}]", f"not a voice description: {exc}") from None


def enqueue(
    req: PreparedRequest, keys: Keys, *, url: str, replicas: int = 0, replica_timeout_ms: int = 1000
) -> Op[EnqueueResult]:
    """Run the enqueue script for ``req`` and write its header frame (both retried after a lost
    connection or a timeout); ``url`` names the server in errors. ``replicas`` > 0
    (``durability="replica"``): the enqueue returns only once that many replicas have the request
    (``WAIT`` up to ``replica_timeout_ms``, retried; then RedisUnavailable ``NOREPLICAS``), so the
    master's death loses no accepted request.

    Raises the error of :data:`REFUSALS` for a refusal (nothing is written then), and a translated
    :class:`~chorus_client.errors.ChorusError` for any other Redis error."""
    try:
        for attempt in range(1, ENQUEUE_TRIES + 1):
            try:
                yield from ENQUEUE.call(
                    dict(zip(ENQUEUE.keys, req.keys, strict=True)),
                    dict(zip(ENQUEUE.args, req.args[: len(ENQUEUE.args)], strict=True)),
                    [dict(zip(ENQUEUE.group, req.args[i : i + 3], strict=True)) for i in range(8, len(req.args), 3)],
                    replicas=replicas,
                    timeout_ms=replica_timeout_ms,
                )
                break
            except redis.RedisError as exc:
                refusal = parse_refusal(exc)
                if refusal is not None:
                    rate = (yield from service_rate(keys, req.tenant)) if refusal.kind == "QUEUEFULL" else None
                    raise REFUSALS[refusal.kind](req.tenant, refusal.words, req.segments, rate) from None
                if attempt == ENQUEUE_TRIES or not _retryable(exc):
                    raise
                yield Sleep(RETRY_STEP_S * attempt)
        header = Transaction(
            (
                Command(("XADD", req.audio_key, "*", "f", req.header)),  # a retry may add a second header: harmless
                Command(("EXPIRE", req.audio_key, PENDING_AUDIO_TTL_S)),
            )
        )
        for attempt in range(1, ENQUEUE_TRIES + 1):
            try:
                yield header
                break
            except redis.RedisError as exc:
                if attempt == ENQUEUE_TRIES or not _retryable(exc):
                    raise
                yield Sleep(RETRY_STEP_S * attempt)
    except redis.RedisError as exc:
        raise translate(exc, url) from exc
    return EnqueueResult(req.request_id, req.segments, req.sample_rate, req.voices)
