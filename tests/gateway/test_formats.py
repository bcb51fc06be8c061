"""Formats as players see them (issue 22): encoder delay signalled where the container can, and
streams that keep up with the audio fed, segment by segment.

The numbers behind the bounds below:

* AAC (FFmpeg's encoder) codes 1024-sample frames and puts one frame of priming before the audio;
  it also holds one frame back (its lookahead) and a frame being filled. Raw ADTS cannot say so:
  the priming decodes as 1024 samples of near silence before the audio, and the last frame's
  padding after it. What is decodable trails what was fed by under 3 frames of audio.
* M4A (AAC in MP4) says so in its edit list (``elst``: media time 1024), so decoders drop the
  priming. Live, FFmpeg writes the ``moov`` (with the edit list) once the first fragment is cut
  (``delay_moov``), and a fragment of two frames closes when the next frame arrives: audio trails
  by under 5 frames. FFmpeg's decoder keeps the last frame's padding (under one frame); players that
  honour the edit's length (Chromium, Apple's) trim that too: bench/formats.py measures Chromium.
* MP3 (LAME): 576-sample frames at 22.05 and 24 kHz, 1105 samples of delay (576 encoder + 529
  decoder). A finished request's file has the LAME/Xing header with delay and padding, so it decodes
  exactly; a live stream cannot (FFmpeg writes the header only into a file it can seek back into).
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pytest

from chorus.testing import speech_like
from gateway.encode import CONTENT_TYPES, FORMATS, encode_whole, make_encoder
from gateway.http import HttpError, audio_format

RATES = (24_000, 22_050)  # Kokoro's and Piper's
SEGMENTS_S = (1.3, 0.85, 2.05)  # none a whole number of any codec's frames
AAC_FRAME = 1024
MP3_FRAME = 576  # MPEG-2 layer III, at 22.05 and 24 kHz
MP3_DELAY = 576 + 529
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")  # OpenAI's response_format values
Pcm = npt.NDArray[np.int16]
Signal = npt.NDArray[np.float64]


def frames_of(segment: Pcm, rate: int) -> list[bytes]:
    """The segment as the workers publish it: 100 ms frames, the last one shorter."""
    step = rate // 10
    return [segment[i : i + step].astype("<i2").tobytes() for i in range(0, len(segment), step)]


def decode(data: bytes, fmt: str) -> Signal:
    """What FFmpeg's decoder makes of ``data``: mono samples at the stream's rate, on PCM16's scale
    (AAC and Opus decode to floats); empty while there is nothing to decode yet."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float64)
    if not data:
        return np.zeros(0)
    try:
        with av.open(io.BytesIO(data), format="aac" if fmt == "aac" else None) as container:
            chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    except av.FFmpegError:  # not even a header yet
        return np.zeros(0)
    if not chunks:
        return np.zeros(0)
    samples = np.concatenate(chunks)
    return samples * 32768.0 if samples.dtype.kind == "f" else samples.astype(np.float64)


def offset(decoded: Signal, pcm: Pcm, most: int = 3000) -> int:
    """Where ``pcm`` starts in ``decoded`` (samples, 0 to ``most``): the encoder delay a decoder did
    not remove, as the lag of the best cross-correlation."""
    size = 1 << (len(decoded) + len(pcm)).bit_length()
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(pcm.astype(np.float64), size))
    return int(np.argmax(np.fft.irfft(spectrum, size)[: most + 1]))


def mp4_boxes(data: bytes, path: tuple[bytes, ...]) -> list[bytes]:
    """The bodies of the boxes at ``path`` (e.g. moov, trak, edts, elst), in file order."""
    found, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        if kind == path[0]:
            body = data[at + 8 : at + size]
            found += [body] if len(path) == 1 else mp4_boxes(body, path[1:])
        at += size
    return found


def top_boxes(data: bytes) -> list[bytes]:
    kinds, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        kinds.append(kind)
        at += size
    return kinds


def edit_list(data: bytes) -> list[tuple[int, int]]:
    """(segment duration, media time) of each edit of the first track (version 0 ``elst``)."""
    (elst,) = mp4_boxes(data, (b"moov", b"trak", b"edts", b"elst"))
    (count,) = struct.unpack_from(">I", elst, 4)
    return [struct.unpack_from(">Ii", elst, 8 + 12 * i) for i in range(count)]


def request(rate: int) -> list[Pcm]:
    return [speech_like(rate, s, i) for i, s in enumerate(SEGMENTS_S)]


@pytest.mark.parametrize("rate", RATES)
def test_a_finished_request_as_m4a_is_a_plain_mp4_whose_edit_list_trims_the_priming(rate: int) -> None:
    pcm = np.concatenate(request(rate))
    body, content_type, out_rate = encode_whole("m4a", pcm.astype("<i2").tobytes(), rate)
    assert (content_type, out_rate) == ("audio/mp4", rate)
    kinds = top_boxes(body)
    assert kinds[0] == b"ftyp" and kinds.index(b"moov") < kinds.index(b"mdat"), kinds  # index first
    assert b"moof" not in kinds, "not fragmented"
    assert edit_list(body) == [(len(pcm), AAC_FRAME)], "the exact length, in samples, after the priming"
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.audio[0]
        assert (stream.duration, stream.time_base) == (len(pcm), Fraction(1, rate)), "a prober's duration: exact"
    decoded = decode(body, "m4a")
    assert offset(decoded, pcm) == 0, "the priming is gone"
    assert len(pcm) <= len(decoded) < len(pcm) + AAC_FRAME, "FFmpeg keeps the last frame's padding"


@pytest.mark.parametrize("rate", RATES)
def test_live_m4a_streams_fragments_and_trims_the_priming(rate: int) -> None:
    """Fed frame by frame, the stream is decodable after every frame to what was fed minus five AAC
    frames (a partly filled frame, the encoder's lookahead, the decoder's overlap, and the fragment
    of two frames held until the next frame closes it); the priming is trimmed live."""
    encoder = make_encoder("m4a", rate)
    assert encoder.content_type == "audio/mp4"
    out, fed = b"", 0
    for segment in request(rate):
        for frame in frames_of(segment, rate):
            out += encoder.feed(frame)
            fed += len(frame) // 2
            assert len(decode(out, "m4a")) >= fed - 5 * AAC_FRAME, (fed, len(decode(out, "m4a")))
    out += encoder.close()
    kinds = top_boxes(out)
    assert kinds[:3] == [b"ftyp", b"moov", b"moof"] and kinds.count(b"moof") > 20, kinds
    assert edit_list(out) == [(0, AAC_FRAME)], "the priming, and a length not yet known (0: to the end)"
    pcm = np.concatenate(request(rate))
    decoded = decode(out, "m4a")
    assert offset(decoded, pcm) == 0
    assert len(pcm) <= len(decoded) < len(pcm) + AAC_FRAME


@pytest.mark.parametrize("rate", RATES)
def test_aac_stays_raw_adts_whose_priming_decoders_cannot_know(rate: int) -> None:
    pcm = np.concatenate(request(rate))
    body, content_type, _ = encode_whole("aac", pcm.astype("<i2").tobytes(), rate)
    assert content_type == "audio/aac" and body[0] == 0xFF and body[1] & 0xF0 == 0xF0, "ADTS sync word"
    decoded = decode(body, "aac")
    assert offset(decoded, pcm) == AAC_FRAME
    assert len(pcm) + AAC_FRAME <= len(decoded) < len(pcm) + 2 * AAC_FRAME


@pytest.mark.parametrize("rate", RATES)
def test_a_finished_mp3_signals_its_delay_and_padding_and_decodes_exactly(rate: int) -> None:
    pcm = np.concatenate(request(rate))
    body, _, _ = encode_whole("mp3", pcm.astype("<i2").tobytes(), rate)
    tag = body.find(b"Info")  # the LAME/Xing header of a constant bit rate file, in its first frame
    assert 0 < tag < 200, "a LAME/Xing header in the first frame"
    (flags,) = struct.unpack_from(">I", body, tag + 4)
    lame = tag + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    assert body[lame : lame + 4] == b"Lavf"  # FFmpeg's muxer, which decoders read as LAME's
    (delays,) = struct.unpack(">I", b"\0" + body[lame + 21 : lame + 24])
    delay, padding = delays >> 12, delays & 0xFFF
    assert delay == MP3_DELAY - 529 and 0 < padding
    decoded = decode(body, "mp3")
    assert offset(decoded, pcm) == 0 and len(decoded) == len(pcm), "exact"


@pytest.mark.parametrize("rate", RATES)
def test_a_live_mp3_stream_cannot_say_its_delay(rate: int) -> None:
    """The limitation, measured: LAME's delay is decoded as silence before the audio, and the last
    frame's padding after it."""
    encoder = make_encoder("mp3", rate)
    segments = request(rate)
    out = b"".join(encoder.feed(f) for s in segments for f in frames_of(s, rate)) + encoder.close()
    assert out.find(b"Info", 0, 200) < 0 and out.find(b"Xing", 0, 200) < 0
    pcm = np.concatenate(segments)
    decoded = decode(out, "mp3")
    assert offset(decoded, pcm) == MP3_DELAY
    assert len(pcm) + MP3_DELAY <= len(decoded) < len(pcm) + MP3_DELAY + MP3_FRAME


LEAD = {"aac": AAC_FRAME, "mp3": MP3_DELAY}
"""Samples of encoder delay that a live stream of the format decodes before the audio."""
TRAIL: dict[str, float] = {
    "pcm": 0,
    "wav": 0,
    "flac": 2304,  # one FLAC block (FFmpeg's block size at 22.05 and 24 kHz)
    "opus": 0.1,  # 20 ms frames, 6.5 ms lookahead, a 40 ms Ogg page (gateway.encode), at 48 kHz
    "mp3": 7 * MP3_FRAME,  # LAME's buffering beyond its delay: up to 5.9 frames measured
    "aac": 3 * AAC_FRAME,  # a frame being filled, the encoder's lookahead, the decoder's overlap
    "m4a": 5 * AAC_FRAME,  # and the fragment of two frames, held until the next frame closes it
}
"""How much of the audio fed a live stream may not have made decodable yet: samples, or seconds
(a float under 1)."""


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_after_each_segment_the_stream_decodes_to_what_was_delivered(fmt: str, rate: int) -> None:
    """After the last frame of each segment (where a listener waits for the next segment's
    synthesis), the bytes out so far decode to the audio delivered, less what the codec holds back
    (:data:`TRAIL`), not counting the encoder delay a decoder cannot trim (:data:`LEAD`)."""
    encoder = make_encoder(fmt, rate)
    out, delivered = b"", 0
    trail = TRAIL[fmt] * rate if TRAIL[fmt] < 1 else TRAIL[fmt]
    for segment in request(rate):
        out += b"".join(encoder.feed(frame) for frame in frames_of(segment, rate))
        delivered += len(segment)
        decoded = len(decode(out, fmt)) * rate // encoder.sample_rate  # Opus comes back at 48 kHz
        playable = decoded - LEAD.get(fmt, 0)
        assert playable >= delivered - trail, (fmt, delivered, playable)


def test_the_gateway_takes_every_format_by_name() -> None:
    """OpenAI's names, and m4a; any case; the AAC rates for m4a; nothing else."""
    assert set(OPENAI_FORMATS) < set(FORMATS) and "m4a" in FORMATS
    assert CONTENT_TYPES["m4a"] == "audio/mp4" and CONTENT_TYPES["aac"] == "audio/aac"
    for fmt in FORMATS:
        assert audio_format({"response_format": fmt}, "mp3") == (fmt, None)
        assert audio_format({"format": fmt.upper()}, "wav") == (fmt, None)  # ?format= on /v1/requests/{id}/audio
    assert audio_format({"response_format": "m4a", "sample_rate": "22050"}, "mp3") == ("m4a", 22050)
    for bad in ({"response_format": "mp4"}, {"response_format": "ogg"}, {"format": "m4a", "sample_rate": 47999}):
        with pytest.raises(HttpError) as err:
            audio_format(bad, "mp3")
        assert err.value.status == 400
