"""Real Kokoro: time to first audio through chorus vs the same model in-process, and total time.

For each text, in the same process and with the same thread count:
- in-process first segment: frontend + model on the first segment alone, no queue;
- in-process whole text: every segment rendered back to back, no queue;
- chorus: enqueue -> first audio frame at the subscriber, and -> end marker,
  with an embedded redis-server and one worker thread (model loaded and warm).
Runs alternate so drift hits both sides alike; medians are reported.

    .venv/bin/python -m bench.kokoro_ttfa [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from chorus.speak import embedded_stack, speak
from chorus_client.protocol import SegmentJob
from chorus_client.segment import segment_text
from workers.engine import Engine, load_engine

TEXTS = [
    "你好，世界！今天天气很好，我们一起去公园散步吧。",
    "欢迎使用语音合成服务，请在听到提示音后说出您的问题。",
    "北京是中国的首都，有三千多年的历史，也是一座现代化的大城市。",
    "会议将在明天下午三点开始，请大家提前十分钟到达会议室。",
]


def in_process(engine: Engine, text: str) -> tuple[float, float]:
    segs = segment_text(text)
    t0 = time.perf_counter()
    first = 0.0
    for i, seg in enumerate(segs):
        job = SegmentJob("s0.AAAAAAAAAAAAAAAAAAAAAA", i, seg.text, "jm_kumo", "zh", 1.0, seg.pause_ms, 0)
        for _ in engine.render(job):
            if not first:
                first = time.perf_counter() - t0
    return first, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    engine = load_engine(threads=args.threads, model_ids=["kokoro"])
    rows = []
    with embedded_stack(engine) as client, tempfile.TemporaryDirectory() as tmp:
        for text in TEXTS:
            base_first, base_total, q_first, q_total, audio = [], [], [], [], 0.0
            for _ in range(args.rounds):
                f, t = in_process(engine, text)
                base_first.append(f)
                base_total.append(t)
                res = speak(client, text, Path(tmp) / "o.wav")
                q_first.append(res.first_audio_s)
                q_total.append(res.total_s)
                audio = res.audio_s
            row = [statistics.median(x) for x in (base_first, q_first, base_total, q_total)]
            rows.append(row)
            print(
                f"{text[:12]}…  first: in-process {row[0] * 1000:.0f} ms, chorus {row[1] * 1000:.0f} ms "
                f"(x{row[1] / row[0]:.3f});  total: in-process {row[2]:.2f} s, chorus {row[3]:.2f} s "
                f"(x{row[3] / row[2]:.3f});  audio {audio:.2f} s, RTF {row[3] / audio:.3f}"
            )
    ratios_first = [r[1] / r[0] for r in rows]
    ratios_total = [r[3] / r[2] for r in rows]
    print(
        f"median over texts: first-audio ratio x{statistics.median(ratios_first):.3f}, "
        f"total ratio x{statistics.median(ratios_total):.3f} (threads={args.threads})"
    )


if __name__ == "__main__":
    main()
