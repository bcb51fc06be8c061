"""Gateway under load: many concurrent streams through HTTP, against the same requests read straight from Redis.

Null-backend workers (one 100 ms frame per segment at once) serve; the gateway
runs as its own uvicorn process. For each concurrency level, the same number of
requests is made twice in this process: straight through the Python API
(AsyncProducer + AsyncSubscriber, the baseline) and through the gateway
(POST /v1/audio/speech, pcm). Reported: time to first audio byte p50/p99 for
both, the gateway's added latency (difference of the percentiles), frames per
second through the gateway, and the gateway process's resident memory.

    .venv/bin/python -m bench.gateway_load [--concurrency 1,16,64] [--requests 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from bench.common import pct
from broker.producer import AsyncProducer
from chorus.launch import start_gateway
from chorus.testing import null_engine, start_workers, stop_processes
from chorus_client.constants import DEFAULT_SAMPLE_RATE
from gateway.subscriber import AsyncSubscriber
from shared.config import RedisSettings
from shared.connection import async_client, sync_client
from shared.embedded import EmbeddedRedis
from workers.worker import WorkerConfig

TEXT = "你好，世界！今天天气很好，我们一起去公园散步吧。"
FRAME_BYTES = DEFAULT_SAMPLE_RATE // 10 * 2  # 100 ms of PCM16


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def direct(url: str, n: int, concurrency: int) -> tuple[list[float], int]:
    client = async_client(RedisSettings.from_dsn(url))
    producer, sub = AsyncProducer(client), AsyncSubscriber(client)
    sem = asyncio.Semaphore(concurrency)
    ttfa: list[float] = []
    frames = 0

    async def one() -> None:
        nonlocal frames
        async with sem:
            t0 = time.perf_counter()
            rid = (await producer.enqueue(TEXT, tenant="bench")).request_id
            first = True
            async for _ in sub.frames(rid, timeout_s=30):
                if first:
                    ttfa.append((time.perf_counter() - t0) * 1000)
                    first = False
                frames += 1

    await asyncio.gather(*(one() for _ in range(n)))
    await client.aclose()
    return ttfa, frames


async def through_gateway(base: str, n: int, concurrency: int) -> tuple[list[float], int, float]:
    sem = asyncio.Semaphore(concurrency)
    ttfa: list[float] = []
    total = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one() -> None:
            nonlocal total
            async with sem:
                t0 = time.perf_counter()
                body = {"input": TEXT, "response_format": "pcm"}
                async with client.stream("POST", "/v1/audio/speech", json=body) as resp:
                    resp.raise_for_status()
                    first = True
                    async for chunk in resp.aiter_bytes():
                        if first and chunk:
                            ttfa.append((time.perf_counter() - t0) * 1000)
                            first = False
                        total += len(chunk)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        elapsed = time.perf_counter() - t0
    return ttfa, total // FRAME_BYTES, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with EmbeddedRedis() as server:
        r = sync_client(RedisSettings.from_dsn(server.url))
        procs = start_workers(server.url, args.workers, null_engine, WorkerConfig(claim_count=4), prefix="null-")
        gateway = start_gateway(server.url, "--no-auth", workers=args.workers)
        gw, base = gateway.proc, gateway.base
        idle_mb = _rss_mb(gw.pid)
        version = r.info()["redis_version"]
        print(f"redis-server {version}; {args.workers} null workers; gateway RSS idle {idle_mb:.0f} MB")
        print(
            f"{'streams':>8} {'direct p50/p99 ms':>18} {'gateway p50/p99 ms':>19} {'added p50/p99 ms':>17} "
            f"{'frames/s':>9} {'gateway RSS':>12}"
        )
        asyncio.run(through_gateway(base, 50, 8))  # warm-up
        for c in (int(x) for x in args.concurrency.split(",")):
            d_ttfa, _ = asyncio.run(direct(server.url, args.requests, c))
            g_ttfa, frames, elapsed = asyncio.run(through_gateway(base, args.requests, c))
            d50, d99, g50, g99 = pct(d_ttfa, 50), pct(d_ttfa, 99), pct(g_ttfa, 50), pct(g_ttfa, 99)
            print(
                f"{c:>8} {d50:>8.2f} / {d99:>7.2f} {g50:>9.2f} / {g99:>7.2f} {g50 - d50:>8.2f} / {g99 - d99:>6.2f} "
                f"{frames / elapsed:>9,.0f} {_rss_mb(gw.pid):>9.0f} MB"
            )
        gateway.stop()
        stop_processes(procs)


if __name__ == "__main__":
    main()
