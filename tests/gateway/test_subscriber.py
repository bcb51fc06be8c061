"""Subscriber: reorders, drops duplicates, stops at the end marker, raises clear errors."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from chorus_client.keys import Keys, new_request_id
from chorus_client.protocol import AudioFrame, EndFrame, ErrorFrame, HeaderFrame, encode_frame
from gateway.subscriber import AsyncSubscriber, Reorderer, Subscriber
from shared.config import RedisSettings
from shared.connection import async_client
from shared.errors import RequestFailed, RequestNotFound, StreamTimeout


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
    frames = [
        HeaderFrame(rid, 2, "jm_kumo", 24000, "t"),
        _audio(1, 0, False),
        _audio(1, 1, True),
        _audio(0, 0, True),
        _audio(1, 0, False),
        EndFrame(2),
    ]
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


def _af(seg: int, idx: int, last: bool = False, att: int = 1) -> AudioFrame:
    return AudioFrame(seg, idx, last, 24000, bytes([seg, idx, att]), att)


def test_a_retried_segment_continues_after_what_was_heard() -> None:
    o = Reorderer()
    heard = o.push(_af(0, 0)) + o.push(_af(0, 1))  # attempt 1 dies after two frames
    heard += o.push(_af(0, 3))  # attempt 1's late frame, held
    heard += o.push(_af(0, 0, att=2)) + o.push(_af(0, 1, att=2))  # attempt 2 starts over: already heard
    heard += o.push(_af(0, 2, att=2)) + o.push(_af(0, 3, att=2)) + o.push(_af(0, 4, True, att=2))
    heard += o.push(_af(0, 4, True))  # attempt 1's last frame, superseded
    assert [(f.index, f.attempt) for f in heard] == [(0, 1), (1, 1), (2, 2), (3, 2), (4, 2)]
    assert o.segment == 1 and o.held == 0 and o.superseded == 1 and o.duplicates == 3


def test_a_cancelled_marker_ends_the_stream_with_request_cancelled(r: redis.Redis, keys: Keys) -> None:
    from broker.cancel import cancel
    from broker.producer import Producer
    from shared.errors import RequestCancelled

    rid = Producer(r).enqueue("你好，世界。今天很好。", tenant="t").request_id
    assert cancel(r, rid) is True
    assert cancel(r, rid) is False, "already cancelled"
    with pytest.raises(RequestCancelled):
        list(Subscriber(r).frames(rid, timeout_s=5))
