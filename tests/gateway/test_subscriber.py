"""Subscriber: reorders, drops duplicates, stops at the end marker, raises clear errors."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from gateway.subscriber import AsyncSubscriber, Reorderer, Subscriber
from shared.config import RedisSettings
from shared.connection import async_client
from shared.errors import RequestFailed, RequestNotFound, StreamTimeout
from shared.keys import Keys, new_request_id
from shared.protocol import AudioFrame, EndFrame, ErrorFrame, HeaderFrame, encode_frame


def _audio(seg: int, idx: int, last: bool) -> AudioFrame:
    return AudioFrame(seg, idx, last, 24000, bytes([seg, idx]))


def _write(r: redis.Redis, keys: Keys, rid: str, frames: list[object]) -> None:
    for f in frames:
        r.xadd(keys.audio(rid), {"f": encode_frame(f)})  # type: ignore[arg-type]


def test_reorderer_orders_and_deduplicates() -> None:
    order = Reorderer()
    out = []
    for f in [_audio(1, 0, True), _audio(0, 1, True), _audio(0, 0, False), _audio(0, 0, False), _audio(1, 0, True)]:
        out += order.push(f)
    assert [(f.segment, f.index) for f in out] == [(0, 0), (0, 1), (1, 0)]
    assert order.duplicates == 2


def test_out_of_order_stream_is_heard_in_order(r: redis.Redis, keys: Keys) -> None:
    rid = new_request_id()
    frames = [HeaderFrame(rid, 2, "jm_kumo", 24000, "t"), _audio(1, 0, False), _audio(1, 1, True),
              _audio(0, 0, True), _audio(1, 0, False), EndFrame(2)]  # fmt: skip
    _write(r, keys, rid, frames)
    got = list(Subscriber(r).frames(rid, timeout_s=2))
    assert [(f.segment, f.index) for f in got] == [(0, 0), (1, 0), (1, 1)]


def test_error_frame_raises_request_failed(r: redis.Redis, keys: Keys) -> None:
    rid = new_request_id()
    _write(r, keys, rid, [_audio(0, 0, True), ErrorFrame("synthesis_failed", "model crashed", 1)])
    sub = Subscriber(r).frames(rid, timeout_s=2)
    assert next(sub).segment == 0
    with pytest.raises(RequestFailed) as info:
        next(sub)
    assert (info.value.code, info.value.segment) == ("synthesis_failed", 1)


def test_gap_before_the_end_marker_is_an_error_not_a_hang(r: redis.Redis, keys: Keys) -> None:
    rid = new_request_id()
    _write(r, keys, rid, [_audio(1, 0, True), EndFrame(2)])
    with pytest.raises(RequestFailed, match="incomplete"):
        list(Subscriber(r).frames(rid, timeout_s=5))


def test_silence_times_out(r: redis.Redis, keys: Keys) -> None:
    rid = new_request_id()
    _write(r, keys, rid, [HeaderFrame(rid, 1, "jm_kumo", 24000, "t")])
    t0 = time.monotonic()
    with pytest.raises(StreamTimeout, match="worker"):
        list(Subscriber(r).frames(rid, timeout_s=0.5))
    assert time.monotonic() - t0 < 3


def test_unknown_request(r: redis.Redis) -> None:
    with pytest.raises(RequestNotFound):
        list(Subscriber(r).frames(new_request_id(), timeout_s=1))
    with pytest.raises(RequestNotFound):
        list(Subscriber(r).frames("../../etc", timeout_s=1))


def test_async_subscriber(redis_url: str, r: redis.Redis, keys: Keys) -> None:
    rid = new_request_id()
    _write(r, keys, rid, [_audio(0, 1, True), _audio(0, 0, False), EndFrame(1)])

    async def go() -> list[tuple[int, int]]:
        client = async_client(RedisSettings.from_dsn(redis_url))
        try:
            return [(f.segment, f.index) async for f in AsyncSubscriber(client).frames(rid, timeout_s=2)]
        finally:
            await client.aclose()

    assert asyncio.run(go()) == [(0, 0), (0, 1)]
