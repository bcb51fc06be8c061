"""Streaming audio encoders: PCM16 frames in, bytes of the client's format out, as they arrive.

``pcm`` is the raw PCM16 little-endian mono stream, ``wav`` the same behind a
streaming header (sizes set to the maximum, as players accept for live audio).
``mp3``, ``opus`` (Ogg), ``flac`` and ``aac`` (ADTS) go through PyAV (FFmpeg's
encoders), fed frame by frame, so the first bytes leave after the first frame
and the whole file is never held. A client may ask for another sample rate; the
stream is then resampled (PyAV's resampler). Opus only takes 8, 12, 16, 24 or
48 kHz, so it is resampled to 48 kHz unless asked otherwise.
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
}
FORMATS = tuple(CONTENT_TYPES)
_AV = {  # format -> (container, codec, bit rate)
    "mp3": ("mp3", "libmp3lame", 64_000),
    "opus": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", 0),
    "aac": ("adts", "aac", 64_000),
}
_MUXER_OPTIONS = {"ogg": {"page_duration": "40000"}}
"""Ogg: close a page every 40 ms of audio. FFmpeg's default is 1 s, and a page's audio can be
decoded only once the page is complete, so a second of synthesised audio waited on the server.
Measured on 10 s of 48 kbit/s Opus: 55.2 kbit/s on the wire with 1 s pages, 60.4 with 40 ms
(+9 %), 65.8 with 20 ms; with 50 ms or more the audio out lags what was fed by over 100 ms."""
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_RATES: dict[str, tuple[int, ...]] = {"opus": OPUS_RATES, "mp3": _MPEG_RATES, "aac": _MPEG_RATES}
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
    return buffer.getvalue(), muxer.content_type, muxer.sample_rate


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
    """mp3 / opus / flac / aac through PyAV, one packet at a time."""

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
        self._out = av.open(sink or self._sink, mode="w", format=container, options=_MUXER_OPTIONS.get(container, {}))
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
