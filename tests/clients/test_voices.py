"""A voice per segment, without Redis: each segment's language, the voices hash's defaults, the
request's one sample rate (``sr`` on the segments of another rate), the cache of the hash, and the
server producer's catalog table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker.producer import catalog_voices
from broker.producer import prepare as server_prepare
from chorus_client import protocol as P
from chorus_client.drive import Command
from chorus_client.enqueue import Voice, VoiceCache, VoiceTable, prepare, voices_from_hash
from chorus_client.errors import ProtocolError, UnknownVoice
from chorus_client.keys import Keys
from chorus_client.language import script_lang, segment_languages, split_scripts
from models.catalog import load_catalog
from shared.text import HAN

MIXED = "你好。Hello world. 再见。"
ZH = Voice("jm_kumo", "zh", 24000, "kokoro")
EN = Voice("en_joe", "en", 22050, "piper-joe")
TABLE = VoiceTable({"jm_kumo": ZH, "en_joe": EN}, {"zh": "jm_kumo", "en": "en_joe"})


def _jobs(req: Any) -> list[P.SegmentJob]:
    return [P.decode_segment(req.args[i]) for i in range(10, len(req.args), 3)]


def test_a_segments_script_is_its_language() -> None:
    assert script_lang("我们用 Python 写代码。") == "zh", "English words inside Mandarin stay Mandarin"
    assert script_lang("Crème brûlée, please.") == "en"
    assert script_lang("12:30 — 45%") is None
    assert segment_languages(["1", "你好", "2", "Hi", "3"]) == ["zh", "zh", "zh", "en", "en"]
    assert segment_languages(["1", "Hi"]) == ["en", "en"], "a leading neutral segment takes the next one's"
    assert segment_languages(["1", "2"]) == ["zh", "zh"] and segment_languages(["1"], "en") == ["en"]


def test_the_han_class_is_the_frontends() -> None:
    """chorus_client cannot import shared; its Han class must still be shared.text.HAN's."""
    chars = [chr(c) for c in range(0x2E80, 0x10000)] + ["\U00020000", "a", "é"]
    assert [script_lang(c) == "zh" for c in chars] == [HAN.fullmatch(c) is not None for c in chars]


def test_long_english_is_cut_off_mandarin_and_short_english_stays() -> None:
    assert split_scripts("我刚才说Hello world how are you today你好吗") == [
        "我刚才说",
        "Hello world how are you today",
        "你好吗",
    ]
    assert split_scripts("我们用 Python 和 Node 写代码") == ["我们用 Python 和 Node 写代码"]
    assert split_scripts("Hello world how are you today") == ["Hello world how are you today"]
    assert split_scripts("Hello world how are you 你好") == ["Hello world how are you", "你好"]


def test_no_voice_picks_each_segments_default_at_the_first_voices_rate() -> None:
    req = prepare(MIXED, tenant="acme", keys=Keys(), voice=TABLE)
    assert req.voices == ("jm_kumo", "en_joe", "jm_kumo") and req.sample_rate == 24000
    assert [(j.text, j.voice, j.lang, j.sample_rate) for j in _jobs(req)] == [
        ("你好。", "jm_kumo", "zh", None),
        ("Hello world.", "en_joe", "en", 24000),
        ("再见。", "jm_kumo", "zh", None),
    ]
    header = P.decode_frame(req.header)
    assert isinstance(header, P.HeaderFrame) and (header.voice, header.sample_rate) == ("jm_kumo", 24000)
    assert req.args[2] == "jm_kumo", "the request hash's voice is the first segment's"
    english_first = prepare("Good morning. 早上好。", tenant="acme", keys=Keys(), voice=TABLE)
    assert english_first.sample_rate == 22050
    assert [j.sample_rate for j in _jobs(english_first)] == [None, 22050]


def test_a_named_voice_reads_everything_with_the_payloads_of_before() -> None:
    req = prepare(MIXED, tenant="acme", keys=Keys(), voice=EN, request_id="s0.hLn8qfscKkBg3-VVUSeQLg")
    jobs = _jobs(req)
    assert {(j.voice, j.lang, j.sample_rate) for j in jobs} == {("en_joe", "en", None)}
    assert all(b"sr" not in msgpack_keys(req.args[i]) for i in range(10, len(req.args), 3))


def msgpack_keys(data: bytes) -> set[bytes]:
    import msgpack

    return {k.encode() for k in msgpack.unpackb(data, raw=False)}


def test_no_voice_for_a_language_is_an_unknown_voice_naming_it() -> None:
    zh_only = VoiceTable({"jm_kumo": ZH}, {"zh": "jm_kumo"})
    assert prepare("你好，世界！", tenant="acme", keys=Keys(), voice=zh_only).voices == ("jm_kumo", "jm_kumo")
    with pytest.raises(UnknownVoice) as caught:
        prepare(MIXED, tenant="acme", keys=Keys(), voice=zh_only)
    assert caught.value.lang == "en" and caught.value.known == ["jm_kumo"]
    assert "no voice for language 'en'" in str(caught.value) and "jm_kumo" in str(caught.value)
    with pytest.raises(UnknownVoice) as named:
        zh_only.named("nobody")
    assert named.value.lang is None and "unknown voice 'nobody'" in str(named.value)


def _entry(lang: str, sr: int, default: bool = False) -> str:
    info: dict[str, Any] = {"lang": lang, "sample_rate": sr, "model": "m", "version": "1"}
    return json.dumps({**info, "default": True} if default else info)


def test_the_hashs_defaults_are_the_marked_voices() -> None:
    raw = {
        b"b_zh": _entry("zh", 24000, True).encode(),
        b"a_zh": _entry("zh", 24000).encode(),
        b"en_x": _entry("en", 16000).encode(),
        b"broken": b"{",
        b"lang_number": json.dumps({"lang": 1, "sample_rate": 8000}).encode(),
    }
    table = voices_from_hash(raw)
    assert dict(table.defaults) == {"zh": "b_zh"}, "no en voice is marked (a worker before v1.3 wrote it)"
    assert sorted(table.voices) == ["a_zh", "b_zh", "en_x"], "entries that are no voice are left out"
    assert table.for_lang("zh") == Voice("b_zh", "zh", 24000, "m")
    with pytest.raises(UnknownVoice) as caught:
        table.for_lang("en")
    assert caught.value.lang == "en" and "en_x" in caught.value.known
    assert table.named("en_x").sample_rate == 16000, "an unmarked voice can still be named"


def test_the_cache_reads_the_hash_once_per_ttl() -> None:
    now = [100.0]
    cache = VoiceCache(Keys(), ttl_s=5.0, clock=lambda: now[0])
    reply = {b"jm_kumo": _entry("zh", 24000, True).encode()}

    def run() -> tuple[VoiceTable, int]:
        op, reads = cache.table(), 0
        try:
            step = next(op)
            while True:
                assert step == Command(("HGETALL", "chorus:voices"))
                reads += 1
                step = op.send(reply)
        except StopIteration as done:
            return done.value, reads

    assert run()[1] == 1
    now[0] += 4.9
    table, reads = run()
    assert reads == 0 and table.for_lang("zh").name == "jm_kumo"
    now[0] += 0.2
    assert run()[1] == 1


def test_a_payloads_sr_is_optional_and_checked() -> None:
    job = P.SegmentJob("s0.hLn8qfscKkBg3-VVUSeQLg", 1, "Hi.", "en_joe", "en", 1.0, 0, 5, 24000)
    assert P.decode_segment(P.encode_segment(job)) == job
    plain = P.SegmentJob("s0.hLn8qfscKkBg3-VVUSeQLg", 1, "Hi.", "en_joe", "en")
    assert P.decode_segment(P.encode_segment(plain)).sample_rate is None
    with pytest.raises(ProtocolError) as caught:
        P.decode_segment(P.encode_segment(P.SegmentJob("s0.x", 0, "Hi.", "v", "en", 1.0, 0, 0, 7000)))
    assert caught.value.field == "sr"


def test_the_server_producer_chooses_from_the_catalog() -> None:
    catalog = load_catalog()
    table = catalog_voices(catalog)
    assert table.for_lang("zh").name == catalog.default_voices["zh"]
    assert table.for_lang("en").name == catalog.default_voices["en"]
    req = server_prepare(MIXED, tenant="acme", keys=Keys(), catalog=catalog)
    assert req.voices == ("zm_yunxi", "en_joe", "zm_yunxi") and req.sample_rate == 24000
    english = server_prepare("Hello from chorus.", tenant="acme", keys=Keys(), catalog=catalog)
    assert english.voices == ("en_joe",) and english.sample_rate == 22050
    named = server_prepare(MIXED, tenant="acme", keys=Keys(), catalog=catalog, voice="jf_alpha")
    assert set(named.voices) == {"jf_alpha"}
