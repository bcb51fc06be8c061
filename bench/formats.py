"""Every response format as players see it (issue 22): lengths, encoder delay, and live promptness.

For one request of three segments (synthetic speech-like PCM, or ``--wav`` cut in three), at
24000 and 22050 Hz, per format of :data:`gateway.encode.FORMATS`:

- a finished request (:func:`gateway.encode.encode_whole`, as the gateway replays it): the duration
  a prober reads (PyAV: ``container.duration`` and ``stream.duration × time_base``; this machine has
  no ffprobe), the length FFmpeg's decoder gives against the PCM's, and where the PCM starts in the
  decoded audio (the encoder delay left untrimmed, by cross-correlation);
- a live stream (:func:`gateway.encode.make_encoder`, fed the workers' 100 ms frames as the gateway
  does): the same figures on the whole stream, and after each segment's last frame the seconds of
  audio decodable from the bytes out so far (less the untrimmed delay) against the seconds delivered;
- with ``--browser``, Chromium (Debian's, through Playwright): an ``<audio>`` element's duration once
  it has played to its end, and ``decodeAudioData``'s length, for both files.

    .venv/bin/python -m bench.formats [--wav speech.wav] [--browser]
"""

from __future__ import annotations

import argparse
import http.server
import io
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from chorus.testing import speech_like
from gateway.encode import FORMATS, encode_whole, make_encoder

RATES = (24_000, 22_050)
SEGMENTS_S = (1.3, 0.85, 2.05)
FRAME_S = 0.1  # the workers' frames
_DEMUXERS = {"aac": "aac", "pcm": None}
Signal = npt.NDArray[np.float64]
Pcm = npt.NDArray[np.int16]


def recorded(path: Path, rate: int) -> list[Pcm]:
    """A mono PCM16 WAV, resampled to ``rate`` (PyAV), cut into three segments."""
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth()) != (1, 2):
            raise SystemExit(f"{path}: mono 16-bit WAV only")
        src, data = w.getframerate(), w.readframes(w.getnframes())
    encoder = make_encoder("pcm", src, rate)
    pcm = np.frombuffer(encoder.feed(data) + encoder.close(), dtype="<i2").astype(np.int16)
    return [np.asarray(part) for part in np.array_split(pcm, 3)]


def decode(data: bytes, fmt: str, rate: int) -> Signal:
    """FFmpeg's decoding of ``data``, resampled to ``rate`` where the stream has another (Opus),
    on PCM16's scale; empty while nothing decodes yet."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float64)
    try:
        with av.open(io.BytesIO(data), format=_DEMUXERS.get(fmt)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
            frames += resampler.resample(None)
    except (av.FFmpegError, IndexError):  # no header yet
        return np.zeros(0)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64) if frames else np.zeros(0)


def start_offset(decoded: Signal, pcm: Pcm, most: int = 3000) -> int:
    """Where ``pcm`` starts in ``decoded`` (samples): the lag of the best cross-correlation."""
    size = 1 << (len(decoded) + len(pcm)).bit_length()
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(pcm.astype(np.float64), size))
    return int(np.argmax(np.fft.irfft(spectrum, size)[: most + 1]))


@dataclass
class Figures:
    """One encoded file: what a prober and a decoder make of it. Samples at the PCM's rate."""

    size: int
    container_s: float | None
    stream_s: float | None
    decoded: int
    offset: int

    def cells(self, pcm_len: int) -> str:
        """Bytes, container and stream durations (s), decoded − PCM and delay (samples), as table cells."""
        durations = f"{_s(self.container_s)} | {_s(self.stream_s)}"
        return f"{self.size} | {durations} | {self.decoded - pcm_len:+d} | {self.offset}"


def measure(data: bytes, fmt: str, pcm: Pcm, rate: int) -> Figures:
    container_s = stream_s = None
    if fmt != "pcm":
        with av.open(io.BytesIO(data), format=_DEMUXERS.get(fmt)) as container:
            stream = container.streams.audio[0]
            container_s = container.duration / 1e6 if container.duration is not None else None
            if stream.duration is not None and stream.time_base is not None:
                stream_s = float(stream.duration * stream.time_base)
    decoded = decode(data, fmt, rate)
    return Figures(len(data), container_s, stream_s, len(decoded), start_offset(decoded, pcm))


def live(fmt: str, segments: list[Pcm], rate: int) -> tuple[bytes, list[int]]:
    """The stream as the gateway sends it, and the samples decodable after each segment."""
    encoder = make_encoder(fmt, rate)
    step = round(rate * FRAME_S)
    out, decodable = b"", []
    for segment in segments:
        for i in range(0, len(segment), step):
            out += encoder.feed(segment[i : i + step].astype("<i2").tobytes())
        decodable.append(len(decode(out, fmt, rate)))
    return out + encoder.close(), decodable


def browser(files: dict[str, bytes], rate: int) -> dict[str, dict[str, Any]]:
    """Chromium's view of each file (name -> bytes): ``<audio>`` played to its end, and decodeAudioData."""
    from playwright.sync_api import sync_playwright

    script = """async ({ names, rate }) => {
      const play = (name) => new Promise((resolve) => {
        const a = new Audio(name);
        const done = (ended) => resolve({ name, ended, duration: a.duration, error: a.error && a.error.code });
        a.onended = () => done(true); a.onerror = () => done(false);
        a.play().catch(() => {}); setTimeout(() => done(false), 20000);
      });
      const decoded = async (name) => {
        try { const ctx = new OfflineAudioContext(1, 1, rate);
              return (await ctx.decodeAudioData(await (await fetch(name)).arrayBuffer())).length; }
        catch (e) { return null; }
      };
      const out = [];
      for (const name of names) out.push({ ...(await play(name)), decoded: await decoded(name) });
      return out;
    }"""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any) -> None:
                self.extensions_map = {".m4a": "audio/mp4", ".aac": "audio/aac", ".opus": "audio/ogg"}
                super().__init__(*args, directory=tmp)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as p:
                chromium = p.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    headless=True,
                    args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
                )
                page = chromium.new_page()
                page.goto(f"http://127.0.0.1:{server.server_port}/")
                results = page.evaluate(script, {"names": list(files), "rate": rate})
                chromium.close()
        finally:
            server.shutdown()
    return {r["name"]: r for r in results}


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def table(rate: int, segments: list[Pcm]) -> dict[str, bytes]:
    """Print the table of one rate; the files measured (``replay.<fmt>``, ``live.<fmt>``)."""
    pcm = np.concatenate(segments)
    ends = [int(e) for e in np.cumsum([len(s) for s in segments])]
    sizes = ", ".join(str(len(s)) for s in segments)
    print(f"\n{rate} Hz: {len(pcm)} samples ({len(pcm) / rate:.4f} s) in segments of {sizes}.")
    print("Durations in s; decoded − PCM and delay (where the PCM starts in the decoded audio) in samples.\n")
    cols = "bytes | container | stream | decoded − PCM | delay"
    print(f"| format | replay: {cols} | live: {cols} | live: playable / delivered after each segment (s) |")
    print("| --- |" + " ---: |" * 10 + " --- |")
    files: dict[str, bytes] = {}
    for fmt in FORMATS:
        body, _, _ = encode_whole(fmt, pcm.astype("<i2").tobytes(), rate)
        stream, decodable = live(fmt, segments, rate)
        files[f"replay.{fmt}"], files[f"live.{fmt}"] = body, stream
        whole, streamed = measure(body, fmt, pcm, rate), measure(stream, fmt, pcm, rate)
        after = " · ".join(
            f"{(d - streamed.offset) / rate:.3f}/{e / rate:.3f}" for d, e in zip(decodable, ends, strict=True)
        )
        print(f"| {fmt} | {whole.cells(len(pcm))} | {streamed.cells(len(pcm))} | {after} |")
    return files


def browser_table(files: dict[str, bytes], rate: int, pcm_len: int) -> None:
    seen = browser(files, rate)
    print(f"\nChromium, {rate} Hz: `<audio>` duration (s) once played to its end; decodeAudioData − PCM (samples)\n")
    print("| format | replay: duration | replay: decoded − PCM | live: duration | live: decoded − PCM |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for fmt in FORMATS:
        cells = []
        for kind in ("replay", "live"):
            r = seen[f"{kind}.{fmt}"]
            cells.append(f"{r['duration']:.4f}" if r["ended"] else f"error {r['error']}")
            cells.append("–" if r["decoded"] is None else f"{r['decoded'] - pcm_len:+d}")
        print(f"| {fmt} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav", type=Path, help="a recorded mono 16-bit WAV instead of the synthetic PCM")
    parser.add_argument("--browser", action="store_true", help="also play and decode every file in Chromium")
    args = parser.parse_args()
    for rate in RATES:
        segments = recorded(args.wav, rate) if args.wav else [speech_like(rate, s, i) for i, s in enumerate(SEGMENTS_S)]
        files = table(rate, segments)
        if args.browser:
            browser_table(files, rate, sum(len(s) for s in segments))


if __name__ == "__main__":
    main()
