"""Segment edges: fades, trimming, the pause after punctuation, the gain, the limiter, loudness, and the worker
publishing shaped segments (with doubles whose model ids are calibrated; the real models: tests/e2e)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
import redis

from broker.producer import Producer
from chorus.testing import IdentityFrontend
from chorus_client.keys import Keys
from chorus_client.protocol import AudioFrame, SegmentJob, decode_frame
from shared.audio import KNEE, loudness_db, peak_limit
from workers.engine import Engine
from workers.joins import (
    CLAUSE_PAUSE_MS,
    FADE_MS,
    LEAD_MS,
    LIST_PAUSE_MS,
    MAX_CORRECTION_DB,
    MODEL_LEVELS,
    SENTENCE_PAUSE_MS,
    TARGET_LUFS,
    TRAIL_MS,
    SegmentEdges,
    fade_in,
    fade_out,
    pause_after,
    segment_gain_db,
    voiced_span,
)
from workers.worker import Worker, WorkerConfig

SR = 24000


def _ms(ms: float, sr: int = SR) -> int:
    return int(sr * ms // 1000)


def _tone(ms: float, amplitude: float, sr: int = SR, hz: float = 220.0) -> npt.NDArray[np.float32]:
    """A cosine: it starts and ends away from zero, so a cut without a fade would click."""
    t = np.arange(_ms(ms, sr)) / sr
    return (amplitude * np.cos(2 * np.pi * hz * t + 0.3)).astype(np.float32)


def _silence(ms: float, sr: int = SR) -> npt.NDArray[np.float32]:
    return np.zeros(_ms(ms, sr), dtype=np.float32)


def _job(text: str, pause_ms: int = 0) -> SegmentJob:
    return SegmentJob("s0.AAAAAAAAAAAAAAAAAAAAAA", 0, text, "jm_kumo", "zh", 1.0, pause_ms, 0)


# -- fades and trimming -------------------------------------------------------------------


def test_fades_are_raised_cosines_from_and_to_zero() -> None:
    x = np.ones(1000, dtype=np.float32)
    up, down = fade_in(x, 100), fade_out(x, 100)
    assert up[0] < 1e-3 and down[-1] < 1e-3
    assert np.all(np.diff(up[:100]) > 0) and np.all(up[100:] == 1)
    assert np.all(np.diff(down[-100:]) < 0) and np.all(down[:-100] == 1)
    assert np.allclose(up[:100], down[-100:][::-1])
    assert np.allclose(up[:100] + up[:100][::-1], 1.0, atol=1e-6), "a raised cosine: symmetric about one half"
    assert np.array_equal(x, np.ones(1000)), "a copy: the input is left alone"
    assert fade_in(x[:10], 100)[0] < 0.05 and fade_out(np.zeros(0, dtype=np.float32), 5).size == 0


def test_voiced_span_finds_the_speech_between_the_silences() -> None:
    x = np.concatenate((_silence(300), _tone(500, 0.3), _silence(600)))
    start, end = voiced_span(x, SR)  # type: ignore[misc]
    assert start == _ms(300) and end == _ms(800)
    assert voiced_span(_silence(200), SR) is None
    assert voiced_span(np.full(_ms(100), 1e-4, dtype=np.float32), SR) is None, "-80 dBFS is silence"
    assert voiced_span(np.zeros(0, dtype=np.float32), SR) is None


# -- the pause after a segment --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pause"),
    [
        ("今天天气很好。", SENTENCE_PAUSE_MS),
        ("真的吗？", SENTENCE_PAUSE_MS),
        ("太好了！", SENTENCE_PAUSE_MS),
        ("等一下……", SENTENCE_PAUSE_MS),
        ("Hello from chorus.", SENTENCE_PAUSE_MS),
        ("Really?!", SENTENCE_PAUSE_MS),
        ("半角句号｡", SENTENCE_PAUSE_MS),
        ("全角句号．", SENTENCE_PAUSE_MS),
        ("他说：“你好。”", SENTENCE_PAUSE_MS),
        ('She said "yes."  ', SENTENCE_PAUSE_MS),
        ("（括号里的话！）", SENTENCE_PAUSE_MS),
        ("你好，", CLAUSE_PAUSE_MS),
        ("Hello,", CLAUSE_PAUSE_MS),
        ("第一；", CLAUSE_PAUSE_MS),
        ("as follows:", CLAUSE_PAUSE_MS),
        ("注意：", CLAUSE_PAUSE_MS),
        ("半角逗号､", LIST_PAUSE_MS),
        ("苹果、", LIST_PAUSE_MS),
        ("我们的目标是让每个人都能在任何地方听到", 0),
        ("a sentence cut in the middle", 0),
        ("😀", 0),
        ("", 0),
    ],
)
def test_the_pause_follows_the_final_punctuation(text: str, pause: int) -> None:
    assert pause_after(text) == pause


def test_pauses_are_ordered_sentence_clause_list() -> None:
    assert SENTENCE_PAUSE_MS > CLAUSE_PAUSE_MS > LIST_PAUSE_MS > 0


# -- level: gain, limiter, loudness ---------------------------------------------------------


def test_the_gain_brings_a_segment_to_the_target_within_the_correction() -> None:
    model = -25.0
    calibrated = TARGET_LUFS - model
    assert segment_gain_db(float("-inf"), model) == calibrated, "nothing to measure: the model's gain"
    assert segment_gain_db(-26.5, model) == pytest.approx(TARGET_LUFS + 26.5)
    assert segment_gain_db(-40.0, model) == pytest.approx(calibrated + MAX_CORRECTION_DB), "a whisper is not lifted"
    assert segment_gain_db(-10.0, model) == pytest.approx(calibrated - MAX_CORRECTION_DB)


def test_loudness_reads_the_standards_reference_and_ignores_silence() -> None:
    for sr in (48000, 24000, 22050):
        sine = _tone(2000, 1.0, sr, 997.0)
        assert loudness_db(sine, sr) == pytest.approx(-3.01, abs=0.05), sr
        assert loudness_db(sine * 0.5, sr) == pytest.approx(-3.01 - 6.02, abs=0.05)
    speech = _tone(3000, 0.1)
    padded = np.concatenate((_silence(2000), speech, _silence(2000)))
    assert abs(loudness_db(padded, SR) - loudness_db(speech, SR)) < 0.5, "gated: silence does not count"
    assert loudness_db(_silence(500), SR) == float("-inf") and loudness_db(np.zeros(0, np.float32), SR) == float("-inf")
    assert loudness_db(_tone(100, 0.1, hz=60), SR) < loudness_db(_tone(100, 0.1, hz=3000), SR), "K-weighted"


def test_peak_limiter_keeps_every_sample_under_the_ceiling_with_a_smooth_gain() -> None:
    x = _tone(1000, 0.5)
    x[_ms(500) : _ms(520)] *= 3.0  # a 20 ms burst to 1.5
    y = peak_limit(x, SR)
    assert np.abs(y).max() <= KNEE
    gain = y / np.where(np.abs(x) > 1e-3, x, np.nan)
    assert np.nanmax(np.abs(np.diff(gain[~np.isnan(gain)]))) < 0.01, "the gain ramps, the waveform is not bent"
    assert np.array_equal(y[: _ms(480)], x[: _ms(480)]) and np.array_equal(y[_ms(540) :], x[_ms(540) :]), "local"
    quiet = _tone(100, 0.8)
    assert np.array_equal(peak_limit(quiet, SR), quiet), "nothing over the ceiling: untouched"


# -- one segment, streamed ----------------------------------------------------------------


def _shape(
    pieces: list[npt.NDArray[np.float32]], text: str = "好。", level: float = -20.0
) -> tuple[SegmentEdges, npt.NDArray[np.float32]]:
    """The edges of one segment and everything they published for ``pieces``, ``finish`` included."""
    edges = SegmentEdges(SR, model_lufs=level, text=text)
    return edges, np.concatenate([edges.push(p) for p in pieces] + [edges.finish()])


def test_the_models_silence_is_trimmed_to_the_margins_and_the_pause_is_chorus() -> None:
    speech = _tone(600, 0.1)
    edges, out = _shape([np.concatenate((_silence(350), speech, _silence(650)))], "今天天气很好。")
    assert len(out) == _ms(LEAD_MS) + len(speech) + _ms(TRAIL_MS)
    assert edges.pause_ms == SENTENCE_PAUSE_MS
    assert _shape([speech], "你好，")[0].pause_ms == CLAUSE_PAUSE_MS
    assert _shape([speech], "一半")[0].pause_ms == 0
    assert SegmentEdges(SR, model_lufs=-20.0, text="好。", pause_ms=200).pause_ms == SENTENCE_PAUSE_MS + 200


def test_cuts_through_sound_are_faded_so_they_cannot_click() -> None:
    tone = _tone(500, 0.3)  # no silence to trim: both cuts fall inside the sound
    _, out = _shape([tone])
    fade, lead, trail = _ms(FADE_MS), _ms(LEAD_MS), _ms(TRAIL_MS)
    assert len(out) == lead + len(tone) + trail, "the margins are padded with silence where the model left none"
    assert not out[:lead].any() and not out[-trail:].any()
    sound = out[lead:-trail]
    assert abs(sound[0]) < 0.01 and abs(sound[-1]) < 0.01, "the cut edges are faded"
    assert np.abs(np.diff(out)).max() < 0.05, "no step anywhere: a 220 Hz tone at 0.3 steps by at most 0.02"
    gain = sound[len(sound) // 2] / tone[len(sound) // 2]
    assert np.allclose(sound[fade:-fade], gain * tone[fade:-fade], rtol=1e-4), "only the fade lengths are touched"


def _heard_lufs(audio: npt.NDArray[np.float32]) -> float:
    span = voiced_span(audio, SR)
    assert span is not None
    return loudness_db(audio[span[0] : span[1]], SR)


def test_segments_of_different_levels_and_models_come_out_equally_loud() -> None:
    _, quiet = _shape([np.concatenate((_silence(50), _tone(800, 0.02), _silence(150)))], level=-35.0)
    _, loud = _shape([np.concatenate((_silence(300), _tone(800, 0.5), _silence(600)))], level=-7.0)
    assert _heard_lufs(quiet) == pytest.approx(TARGET_LUFS, abs=0.2)
    assert _heard_lufs(loud) == pytest.approx(TARGET_LUFS, abs=0.2)
    _, hot = _shape([_tone(800, 0.02) * np.float32(60)], level=-35.0)  # way over full scale after its gain
    assert np.abs(hot).max() <= KNEE


def test_one_gain_per_segment_decided_on_the_first_piece() -> None:
    edges = SegmentEdges(SR, model_lufs=-20.0, text="好。")
    first = edges.push(_tone(400, 0.1))
    gain = edges.gain_db
    second = edges.push(_tone(400, 0.4))  # louder: not levelled again, so the segment cannot pump
    assert edges.gain_db == gain
    assert np.abs(second).max() / np.abs(first).max() == pytest.approx(4.0, rel=0.02)


def test_speech_is_published_as_its_piece_arrives_only_the_tail_waits() -> None:
    edges = SegmentEdges(SR, model_lufs=-20.0, text="好。")
    assert edges.push(_silence(300)).size == 0, "the model's leading silence is dropped"
    out = edges.push(np.concatenate((_silence(300), _tone(500, 0.1), _silence(600))))
    assert len(out) == _ms(LEAD_MS) + _ms(500) - _ms(FADE_MS), "all the speech but its last fade"
    assert len(edges.finish()) == _ms(FADE_MS) + _ms(TRAIL_MS)


def test_a_join_inside_a_segment_keeps_the_models_gap_up_to_a_sentence_pause() -> None:
    speech = _tone(300, 0.1)
    _, short = _shape([np.concatenate((speech, _silence(150))), np.concatenate((_silence(50), speech))])
    margins = _ms(LEAD_MS) + _ms(TRAIL_MS)  # padded: the model left no silence before or after
    assert len(short) == margins + 2 * len(speech) + _ms(200), "the model's 200 ms gap kept"
    _, long = _shape([np.concatenate((speech, _silence(600))), np.concatenate((_silence(400), speech))])
    assert len(long) == margins + 2 * len(speech) + _ms(TRAIL_MS + SENTENCE_PAUSE_MS + LEAD_MS), "1 s: cut"


def test_a_segment_with_nothing_to_hear_is_only_its_pause() -> None:
    edges = SegmentEdges(SR, model_lufs=-20.0, text="。", pause_ms=100)
    assert edges.push(_silence(500)).size == 0 and edges.finish().size == 0
    assert edges.pause_ms == SENTENCE_PAUSE_MS + 100


def test_an_uncalibrated_model_is_published_as_it_comes() -> None:
    piece = np.concatenate((_silence(300), _tone(500, 1.2), _silence(300)))
    edges = SegmentEdges.for_job(_job("你好。", 250), SR, "tiny")
    assert not edges.shaped
    assert np.array_equal(edges.push(piece), piece), "untouched: no trim, no gain, no limiter"
    assert edges.finish().size == 0 and edges.pause_ms == 250, "only the <break>, as before"
    assert SegmentEdges.for_job(_job("你好。"), SR, None).pause_ms == 0
    assert SegmentEdges.for_job(_job("你好。"), SR, "kokoro").shaped


# -- through the worker ---------------------------------------------------------------------


class _ModelDouble:
    """A model that pads ``amplitude`` of tone, faded in and out over 20 ms like speech, with its own silence
    (350 ms before, 650 ms after, as Kokoro does)."""

    device = "none"

    def __init__(self, model_id: str, sample_rate: int, amplitude: float) -> None:
        self.model_id, self.sample_rate, self.amplitude = model_id, sample_rate, amplitude

    def voices(self) -> list[str]:
        return ["jm_kumo", "en_joe"]

    def synthesize(self, phonemes: str, voice: str, speed: float) -> Iterator[npt.NDArray[np.float32]]:
        sr = self.sample_rate
        speech = fade_out(fade_in(_tone(700, self.amplitude, sr), _ms(20, sr)), _ms(20, sr))
        yield np.concatenate((_silence(350, sr), speech, _silence(650, sr)))


@pytest.fixture()
def engine_of_doubles() -> Engine:
    """Kokoro's and Piper's model ids (so calibrated), at 24 and 22.05 kHz, about 8 dB apart."""
    assert {"kokoro", "piper-joe"} <= set(MODEL_LEVELS)
    return Engine(
        backends={"jm_kumo": _ModelDouble("kokoro", 24000, 0.2), "en_joe": _ModelDouble("piper-joe", 22050, 0.08)},
        frontends={"zh": IdentityFrontend("zh"), "en": IdentityFrontend("en")},
        models={"jm_kumo": "kokoro", "en_joe": "piper-joe"},
    )


def _segments(r: redis.Redis, rid: str) -> list[npt.NDArray[np.float32]]:
    pcm: dict[int, bytes] = {}
    for _, fields in r.xrange(Keys().audio(rid)):
        frame = decode_frame(fields[b"f"])
        if isinstance(frame, AudioFrame):
            pcm[frame.segment] = pcm.get(frame.segment, b"") + frame.pcm
    return [np.frombuffer(pcm[seg], dtype="<i2").astype(np.float32) / 32768 for seg in sorted(pcm)]


def test_the_worker_publishes_trimmed_levelled_segments_with_punctuation_pauses(
    r: redis.Redis, engine_of_doubles: Engine
) -> None:
    worker = Worker(r, engine_of_doubles, config=WorkerConfig(name="joins", idle_wait_s=0.1))
    zh = Producer(r).enqueue('你好，世界。<break time="100ms"/>再见', tenant="t", voice="jm_kumo").request_id
    en = Producer(r).enqueue("Hello, world.", tenant="t", voice="en_joe").request_id
    while worker.run_once():
        pass
    levels = []
    for rid, sr, pauses in (
        (zh, 24000, [CLAUSE_PAUSE_MS, SENTENCE_PAUSE_MS + 100, 0]),
        (en, 22050, [CLAUSE_PAUSE_MS, SENTENCE_PAUSE_MS]),
    ):
        segments = _segments(r, rid)
        assert len(segments) == len(pauses)
        for audio, pause in zip(segments, pauses, strict=True):
            want = _ms(LEAD_MS + 700 + TRAIL_MS + pause, sr)
            assert abs(len(audio) - want) <= _ms(10, sr), f"{len(audio)} samples, want {want}: the model's silence"
            assert not audio[len(audio) - _ms(pause, sr) :].any(), "the pause is silence"
            assert np.abs(np.diff(audio)).max() < 0.05, "no step anywhere"
            span = voiced_span(audio, sr)
            assert span is not None
            levels.append(loudness_db(audio[span[0] : span[1]], sr))
    assert max(levels) - min(levels) < 0.5 and abs(levels[0] - TARGET_LUFS) < 0.5, levels
