"""Streaming audio encoders: PCM16 frames in, bytes of the client's format out, as they arrive.

``pcm`` is the raw PCM16 little-endian mono stream, ``wav`` the same behind a
streaming header (sizes set to the maximum, as players accept for live audio).
``mp3``, ``opus`` (Ogg), ``flac``, ``aac`` (raw ADTS, as OpenAI's ``aac``) and
``m4a`` (AAC in MP4) go through PyAV (FFmpeg's encoders), fed frame by frame, so
the first bytes leave after the first frame and the whole file is never held. A
client may ask for another sample rate; the stream is then resampled (PyAV's
resampler). Opus only takes 8, 12, 16, 24 or 48 kHz, so it is resampled to
48 kHz unless asked otherwise.

Encoder delay. The AAC encoder puts 1024 samples of priming before the audio and
pads the last frame; LAME puts 1105 (576 + 529) before it. ``m4a`` says so in
its edit list (``elst``: media time 1024), live too: the fragmented stream's
``moov`` waits for the first fragment (``delay_moov``), without which FFmpeg
drops the edit list from fragmented output and shifts the priming into the
timeline. Live, the edit's length is unknown (0: to the end); the last sample's
duration in the last fragment is the true one. A finished request
(:func:`encode_whole`) is a plain M4A, ``moov`` first, whose edit list has the
exact length (Chromium plays exactly that; FFmpeg's decoder keeps the last
frame's padding, under 1024 samples), and an MP3 with its LAME/Xing header
(delay and padding). ADTS and a live MP3 stream cannot say either (FFmpeg writes
the LAME/Xing header only into a file it can seek back into): decoders play the
1024 (AAC) or 1105 (MP3) samples of delay before the audio, and the last frame's
padding after it.
bench/formats.py measures every format as a prober, a decoder and Chromium see it.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any, Protocol

import av
import numpy as np
from av.audio.stream import AudioStream

__all__ = ["CONTENT_TYPES", "FORMATS", "Encoder", "encode_whole", "make_encoder", "supported_rates"]

CONTENT_TYPES = {
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
}
FORMATS = tuple(CONTENT_TYPES)
_AV = {  # format -> (container, codec, bit rate)
    "mp3": ("mp3", "libmp3lame", 64_000),
    "opus": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", 0),
    "aac": ("adts", "aac", 64_000),
    "m4a": ("ipod", "aac", 64_000),  # FFmpeg's "ipod" is its mp4 muxer with the M4A brand
}
_MUXER_OPTIONS = {"ogg": {"page_duration": "40000"}}
"""Ogg: close a page every 40 ms of audio. FFmpeg's default is 1 s, and a page's audio can be
decoded only once the page is complete, so a second of synthesised audio waited on the server.
Measured on 10 s of 48 kbit/s Opus: 55.2 kbit/s on the wire with 1 s pages, 60.4 with 40 ms
(+9 %), 65.8 with 20 ms; with 50 ms or more the audio out lags what was fed by over 100 ms."""
_FRAGMENT_US = 50_000
"""Live M4A: close a fragment (``moof`` + ``mdat``) once it holds 50 ms, so two AAC frames (85 ms at
24 kHz). FFmpeg cuts a fragment only when the next packet arrives, so one frame always waits. Measured
on 6 s at 64 kbit/s, 24 kHz, 100 ms fed at a time: one frame a fragment 87.6 kbit/s on the wire, the
audio out lagging what was fed by 149 ms mean (169 max); two frames 76.4 kbit/s, 171 (212); 100 ms
72.5 kbit/s, 193 (255), and the first audio waits for 300 ms fed instead of 200. ADTS: 63.9 kbit/s,
107 (127), its 1024 samples of priming not counted as audio."""
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_RATES: dict[str, tuple[int, ...]] = {"opus": OPUS_RATES, "mp3": _MPEG_RATES, "aac": _MPEG_RATES, "m4a": _MPEG_RATES}
"""Output rates the encoder takes, where it does not take every rate (FFmpeg's lists for
libopus, libmp3lame and the native AAC encoder, within 8..48 kHz)."""


def supported_rates(fmt: str) -> tuple[int, ...] | None:
    """The output sample rates (Hz) ``fmt`` can be encoded at; None when any rate in 8..48 kHz works."""
    return _RATES.get(fmt)


class Encoder(Protocol):
    content_type: str
    sample_rate: int
    """The rate of the encoded output."""

    def feed(self, pcm: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class _Resampler:
    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self._r = av.AudioResampler(format="s16", layout="mono", rate=dst) if src != dst else None

    def __call__(self, pcm: bytes) -> bytes:
        if self._r is None or not pcm:
            return pcm
        return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in self._r.resample(_frame(pcm, self.src)))

    def flush(self) -> bytes:
        if self._r is None:
            return b""
        return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in self._r.resample(None))


def _frame(pcm: bytes, rate: int) -> Any:
    arr = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(arr, format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


class PcmEncoder:
    content_type = CONTENT_TYPES["pcm"]

    def __init__(self, sample_rate: int, out_rate: int | None = None) -> None:
        self.sample_rate = out_rate or sample_rate
        self._resample = _Resampler(sample_rate, self.sample_rate)

    def feed(self, pcm: bytes) -> bytes:
        return self._resample(pcm)

    def close(self) -> bytes:
        return self._resample.flush()


class WavEncoder(PcmEncoder):
    content_type = CONTENT_TYPES["wav"]

    def __init__(self, sample_rate: int, out_rate: int | None = None) -> None:
        super().__init__(sample_rate, out_rate)
        self._header: bytes | None = _wav_header(self.sample_rate)

    def feed(self, pcm: bytes) -> bytes:
        head, self._header = self._header or b"", None
        return head + super().feed(pcm)

    def close(self) -> bytes:
        head, self._header = self._header or b"", None
        return head + super().close()


def _wav_header(rate: int, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM16 mono header; sizes 0xFFFFFFFF ("unknown", as players take it for live
    audio) unless ``data_bytes`` is given."""
    unknown = 0xFFFFFFFF
    riff = unknown if data_bytes is None else 36 + data_bytes
    data = unknown if data_bytes is None else data_bytes
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, 16-bit
    return b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", data)


def encode_whole(fmt: str, pcm: bytes, sample_rate: int, out_rate: int | None = None) -> tuple[bytes, str, int]:
    """All of ``pcm`` (PCM16 mono at ``sample_rate``) as one complete file of ``fmt``: (bytes, content
    type, output rate). Unlike a stream, the file describes itself: WAV with its sizes, FLAC with
    its total samples (STREAMINFO), Ogg with its last granule, MP3 with a LAME/Xing header (length,
    encoder delay): the muxer writes into a seekable buffer and fills in the header at the end.
    M4A is one plain (unfragmented) MP4 whose edit list trims the AAC priming and padding to the
    exact length, its ``moov`` moved before the audio (:func:`_moov_first`).
    ValueError for an unknown ``fmt``."""
    if fmt in ("pcm", "wav"):
        encoder = PcmEncoder(sample_rate, out_rate)
        body = encoder.feed(pcm) + encoder.close()
        if fmt == "pcm":
            return body, CONTENT_TYPES["pcm"], encoder.sample_rate
        return _wav_header(encoder.sample_rate, len(body)) + body, CONTENT_TYPES["wav"], encoder.sample_rate
    if fmt not in _AV:
        raise ValueError(f"response_format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    buffer = io.BytesIO()
    muxer = AvEncoder(fmt, sample_rate, out_rate, sink=buffer)
    muxer.feed(pcm)
    muxer.close()
    body = buffer.getvalue()
    if fmt == "m4a":
        body = _moov_first(body)
    return body, muxer.content_type, muxer.sample_rate


def _muxer_options(container: str, rate: int, *, whole: bool) -> dict[str, str]:
    """FFmpeg muxer options for ``container`` at ``rate`` (Hz): a live stream, or a ``whole`` file."""
    if container != "ipod":
        return dict(_MUXER_OPTIONS.get(container, {}))
    exact = {"movie_timescale": str(rate)}  # the edit list in samples, not the default milliseconds
    if whole:
        return exact
    # Fragments as audio arrives; the moov waits for the first one, so that it can carry the edit list.
    return {**exact, "movflags": "empty_moov+delay_moov+default_base_moof", "frag_duration": str(_FRAGMENT_US)}


_MP4_PARENTS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
"""The MP4 boxes on the path from ``moov`` to a track's chunk offsets (``stco`` / ``co64``)."""


def _boxes(data: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """The MP4 boxes in ``data[start:end]``: (type, offset, header size, end offset) each, in bytes."""
    out, at = [], start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, at + 8)
            head = 16
        elif size == 0:
            size = end - at
        if size < head:
            raise ValueError(f"bad MP4 box {kind!r} at {at}")
        out.append((kind, at, head, at + size))
        at += size
    return out


def _shift_chunk_offsets(moov: bytearray, start: int, end: int, shift: int) -> None:
    """Add ``shift`` (bytes) to every chunk offset in the boxes of ``moov[start:end]``, in place."""
    for kind, at, head, box_end in _boxes(moov, start, end):
        if kind in _MP4_PARENTS:
            _shift_chunk_offsets(moov, at + head, box_end, shift)
        elif kind in (b"stco", b"co64"):
            (count,) = struct.unpack_from(">I", moov, at + head + 4)  # after version and flags
            item = ">I" if kind == b"stco" else ">Q"
            width = struct.calcsize(item)
            for i in range(count):
                pos = at + head + 8 + i * width
                (offset,) = struct.unpack_from(item, moov, pos)
                struct.pack_into(item, moov, pos, offset + shift)  # struct.error past 4 GiB in stco


def _moov_first(data: bytes) -> bytes:
    """The MP4 file ``data`` with its ``moov`` (the index) moved before its ``mdat`` (the audio) and
    the chunk offsets shifted to match, as FFmpeg's ``-movflags +faststart`` does (that option reopens
    the file by name, so it cannot write into a buffer): a player reading the response from its start
    knows the track before the samples arrive, with no range request to the end."""
    top = _boxes(data, 0, len(data))
    kinds = [kind for kind, *_ in top]
    if b"moov" not in kinds or b"mdat" not in kinds:  # no audio at all: FFmpeg wrote nothing
        return data
    moov_i, mdat_i = kinds.index(b"moov"), kinds.index(b"mdat")
    if moov_i < mdat_i:
        return data
    _, moov_at, moov_head, moov_end = top[moov_i]
    mdat_at = top[mdat_i][1]
    moov = bytearray(data[moov_at:moov_end])
    _shift_chunk_offsets(moov, moov_head, len(moov), len(moov))
    return data[:mdat_at] + bytes(moov) + data[mdat_at:moov_at] + data[moov_end:]


class _Sink(io.RawIOBase):
    """A write-only file that PyAV's muxer writes into; drained after every packet."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


class AvEncoder:
    """mp3 / opus / flac / aac / m4a through PyAV, one packet at a time."""

    def __init__(
        self, fmt: str, sample_rate: int, out_rate: int | None = None, *, sink: io.BytesIO | None = None
    ) -> None:
        """``sink``: write a whole file into this seekable buffer instead (``feed`` and ``close`` then
        return nothing), so the muxer can go back and fill in the header."""
        container, codec, bit_rate = _AV[fmt]
        rate = out_rate or sample_rate
        if fmt == "opus" and rate not in OPUS_RATES:
            rate = 48000
        self.content_type = CONTENT_TYPES[fmt]
        self.sample_rate = rate
        self._resample = _Resampler(sample_rate, rate)
        self._sink = _Sink()
        options = _muxer_options(container, rate, whole=sink is not None)
        self._out = av.open(sink or self._sink, mode="w", format=container, options=options)
        stream = self._out.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, AudioStream)
        self._stream = stream
        if bit_rate:
            self._stream.bit_rate = bit_rate
        self._pts = 0
        self._closed = False

    def _encode(self, pcm: bytes) -> None:
        if not pcm:
            return
        frame = _frame(pcm, self.sample_rate)
        frame.pts = self._pts
        self._pts += frame.samples
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def feed(self, pcm: bytes) -> bytes:
        self._encode(self._resample(pcm))
        return self._sink.drain()

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        self._encode(self._resample.flush())
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        return self._sink.drain()


def make_encoder(fmt: str, sample_rate: int, out_rate: int | None = None) -> Encoder:
    """An encoder for ``fmt`` (one of :data:`FORMATS`); ValueError for anything else."""
    makers: dict[str, Callable[[], Encoder]] = {
        "pcm": lambda: PcmEncoder(sample_rate, out_rate),
        "wav": lambda: WavEncoder(sample_rate, out_rate),
    }
    if fmt in makers:
        return makers[fmt]()
    if fmt in _AV:
        return AvEncoder(fmt, sample_rate, out_rate)
    raise ValueError(f"response_format must be one of {', '.join(FORMATS)}, not {fmt!r}")
