"""Producer against a real redis-server: one atomic enqueue, clear errors, nothing partial."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
import redis

from broker.producer import AsyncProducer, Producer
from chorus_client.keys import Keys
from chorus_client.protocol import HeaderFrame, decode_frame, decode_segment
from shared.config import RedisSettings
from shared.connection import async_client
from shared.errors import ChorusError, InvalidRequest, RedisUnavailable, TextError, UnknownTenant, UnknownVoice

TEXT = "你好，世界！今天天气很好，我们一起去公园散步吧。"


def test_enqueue_writes_metadata_segments_lanes_and_wakeup(r: redis.Redis, keys: Keys) -> None:
    res = Producer(r).enqueue(TEXT, tenant="acme")
    meta = r.hgetall(keys.request(res.request_id))
    assert meta[b"tenant"] == b"acme" and int(meta[b"segments"]) == res.segments == 2
    assert meta[b"voice"] == b"zm_yunxi" and meta[b"status"] == b"queued"
    rt = r.xrange(keys.queue("acme", "rt"))
    inter = r.xrange(keys.queue("acme", "interactive"))
    assert len(rt) == 1 and len(inter) == 1, "first segment goes to the rt lane"
    job = decode_segment(rt[0][1][b"p"])
    assert (job.request_id, job.seq, job.text) == (res.request_id, 0, "你好，")
    assert rt[0][1][b"r"].decode() == res.request_id
    assert rt[0][1][b"c"] == b"3", "the entry declares its weighted characters (the cost estimate)"
    assert r.hget(keys.depth(), "acme") == b"2"
    assert r.lrange(keys.fresh(), 0, -1) == [b"acme"], "an idle tenant joins the fresh list"
    assert r.llen(keys.wake()) == 2
    header = decode_frame(r.xrange(keys.audio(res.request_id))[0][1][b"f"])
    assert isinstance(header, HeaderFrame) and header.sample_rate == 24000 and header.segments == 2


def test_batch_priority_uses_the_batch_lane_only(r: redis.Redis, keys: Keys) -> None:
    Producer(r).enqueue(TEXT, tenant="acme", priority="batch")
    assert r.xlen(keys.queue("acme", "batch")) == 2
    assert not r.exists(keys.queue("acme", "rt"))


def test_tenant_is_activated_once(r: redis.Redis, keys: Keys) -> None:
    p = Producer(r)
    for _ in range(3):
        p.enqueue(TEXT, tenant="acme")
    assert r.lrange(keys.fresh(), 0, -1) == [b"acme"] and r.llen(keys.active()) == 0
    assert r.llen(keys.wake()) == 6


def test_request_ids_are_returned_at_once_and_unique(r: redis.Redis) -> None:
    p = Producer(r)
    ids = {p.enqueue("你好", tenant="t").request_id for _ in range(50)}
    assert len(ids) == 50


def test_duplicate_request_id_leaves_nothing_behind(r: redis.Redis, keys: Keys) -> None:
    p = Producer(r)
    rid = p.enqueue("你好", tenant="acme").request_id
    before = r.xlen(keys.queue("acme", "rt"))
    with pytest.raises(InvalidRequest, match="already used") as err:
        p.enqueue("世界", tenant="acme", request_id=rid)
    assert err.value.field == "request_id"
    assert r.xlen(keys.queue("acme", "rt")) == before
    assert r.hget(keys.depth(), "acme") == b"1"


@pytest.mark.parametrize(
    ("text", "options", "error"),
    [
        ("", {}, TextError),
        ("   ", {}, TextError),
        (b"\xff\xfe", {}, TextError),
        ("你好", {"voice": "nobody"}, UnknownVoice),
        ("你好", {"speed": 9.0}, ChorusError),
        ("你好", {"priority": "urgent"}, ChorusError),
    ],
)
def test_bad_input_is_refused_before_redis_is_touched(
    r: redis.Redis, text: object, options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Producer(r).enqueue(text, tenant="acme", **options)  # type: ignore[arg-type]
    assert r.dbsize() == 0


def test_bad_tenant_is_refused(r: redis.Redis) -> None:
    with pytest.raises(UnknownTenant):
        Producer(r).enqueue("你好", tenant="a:b")
    assert r.dbsize() == 0


def test_down_redis_fails_fast_with_a_clear_error() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.5)
    with pytest.raises(RedisUnavailable, match="cannot reach Redis"):
        Producer(client).enqueue("你好", tenant="acme")


def test_async_producer(redis_url: str, r: redis.Redis, keys: Keys) -> None:
    async def go() -> str:
        client = async_client(RedisSettings.from_dsn(redis_url))
        try:
            res = await AsyncProducer(client).enqueue(TEXT, tenant="acme")
            return res.request_id
        finally:
            await client.aclose()

    rid = asyncio.run(go())
    assert r.hget(keys.request(rid), "segments") == b"2"
    payload = msgpack.unpackb(r.xrange(keys.queue("acme", "rt"))[0][1][b"p"])
    assert payload["req"] == rid


def test_presegmented_text_keeps_the_callers_cuts(r: redis.Redis, keys: Keys) -> None:
    res = Producer(r).enqueue(["你好", "今天天气很好我们一起去公园散步吧今天天气很好我们一起去公园散步吧"], tenant="t")
    assert res.segments == 2
    (rt,) = r.xrange(keys.queue("t", "rt"))
    (inter,) = r.xrange(keys.queue("t", "interactive"))
    assert decode_segment(rt[1][b"p"]).text == "你好" and inter[1][b"c"] == b"32"


@pytest.mark.parametrize("bad", [[], ["你好", "  "], ["x" * 5000], [b"bytes"]])
def test_presegmented_text_is_checked(r: redis.Redis, bad: list[object]) -> None:
    with pytest.raises(TextError):
        Producer(r).enqueue(bad, tenant="t")  # type: ignore[arg-type]
    assert r.dbsize() == 0
