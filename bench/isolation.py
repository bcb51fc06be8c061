"""Tenant isolation: a polite tenant's time to first audio, alone and while another tenant attacks.

One run, two phases, the same processes: an embedded redis-server, ``--workers``
paced worker processes (three 100 ms pieces of tone, 30 ms apart: 90 ms of worker
time per segment) and the real gateway (``python -m chorus gateway``, API keys on).

* Phase 1, baseline: tenant ``alice`` (B) alone makes sequential interactive
  requests (``POST /v1/audio/speech``, pcm, a short Mandarin sentence of two
  segments, voice jm_kumo) for ``--seconds``. Time to first audio (TTFA) is taken
  from sending the request to the first body chunk.
* Phase 2, hostile: the same loop while ``mallory`` (A, ``max_queued`` 2000), from
  its own process, tries to hold ``--streams`` event streams and ``--sockets``
  WebSockets (retrying ``--retry-s`` after each refusal), posts 64 KB texts
  without punctuation in a tight loop (``--flooders`` at once), posts 2 MB bodies
  (with and without Content-Length), and once a second writes poison straight into
  Redis: garbage entries in its lane streams, and entries forged through the
  enqueue script that name another shard or one of alice's requests.

Reported, with the targets: B's TTFA p50/p90/p99 in each phase and the ratio
under attack / alone; where B's time went (gateway in: send to enqueue; worker:
enqueue to first frame written, i.e. queue wait + 30 ms of synthesis; gateway out:
first frame written to first byte received; from the Redis stream ids of B's
requests); B's non-2xx and incomplete answers; A's answers by status and
WebSocket close code; 5xx other than 503 anywhere; worker exits; gateway RSS at
start, peak and end; the dead-letter stream's length; CPU used per process.
Everything shares this machine's cores, the attacking client included.

    .venv/bin/python -m bench.isolation [--seconds 20] [--workers 3] [--streams 300] [--sockets 300] [--json]

``--attack events,sockets,flood,oversize,poison`` runs a part of the attack alone (to find which part
costs B what); ``--gateway-log FILE`` keeps the gateway's stderr (with ``PYTHONASYNCIODEBUG=1`` it
names event-loop callbacks slower than 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import queue
import random
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import websockets

from bench.common import pct
from broker.policy import TenantPolicy
from broker.scripts import ENQUEUE, script_source
from broker.tenants import Tenants
from chorus.launch import start_gateway
from chorus.testing import paced_config, paced_engine, start_workers, stop_processes
from chorus_client.keys import GROUP, LANES, Keys, new_request_id
from chorus_client.protocol import AudioFrame, EndFrame, HeaderFrame, SegmentJob, decode_frame, encode_segment
from gateway.auth import ApiKeys
from shared.config import RedisSettings
from shared.connection import async_client, sync_client
from shared.embedded import EmbeddedRedis

TEXT = "你好，世界！今天天气很好，我们一起去公园散步吧。"
FLOOD_TEXTS = ("a" * 65536, "中" * 21845)  # 64 KB without punctuation: 276 and 230 segments
OVERSIZE = b'{"input": "' + b"a" * (2 * 1024 * 1024) + b'"}'
TARGET_P99_RATIO = 1.5
PARTS = ("events", "sockets", "flood", "oversize", "poison")


# -- the polite tenant ----------------------------------------------------------------------


@dataclass
class Phase:
    ttfa_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    incomplete: list[str] = field(default_factory=list)
    late_headers: int = 0
    gw_in_ms: list[float] = field(default_factory=list)
    worker_ms: list[float] = field(default_factory=list)
    gw_out_ms: list[float] = field(default_factory=list)
    traced: list[tuple[float, float, float, float]] = field(default_factory=list)
    """(ttfa, gateway in, worker, gateway out) of each traced request, ms."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    machine_busy_pct: float = 0.0
    health_ms: list[float] = field(default_factory=list)
    """Of all cores, over the phase: everything that ran on the machine, this run's processes or not."""
    elapsed_s: float = 0.0

    def non_2xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + sum(self.errors.values())


def _ms_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


def polite_loop(base: str, key: str, r: Any, seconds: float, ids: Any | None) -> Phase:
    """Sequential speech requests as tenant B for ``seconds``; each is then traced through its audio stream."""
    out, keys = Phase(), Keys()
    body = {"model": "tts-1", "input": TEXT, "voice": "jm_kumo", "response_format": "pcm"}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent_wall, t0 = time.time(), time.perf_counter()
            first_wall, rid = 0.0, ""
            try:
                with client.stream("POST", "/v1/audio/speech", json=body) as resp:
                    out.statuses[resp.status_code] += 1
                    rid = resp.headers.get("x-request-id", "")
                    if ids is not None and rid:  # the attacker forges entries naming this request while it streams
                        with contextlib.suppress(queue.Full):
                            ids.put_nowait(rid)
                    for chunk in resp.iter_bytes():
                        if chunk and not first_wall:
                            out.ttfa_ms.append((time.perf_counter() - t0) * 1000)
                            first_wall = time.time()
            except httpx.HTTPError as exc:
                out.errors[type(exc).__name__] += 1
                continue
            if not rid:
                continue
            entries = r.xrange(keys.audio(rid))
            frames = [(entry_id, decode_frame(f[b"f"])) for entry_id, f in entries]
            audio = [entry_id for entry_id, f in frames if isinstance(f, AudioFrame)]
            ends = [f for _, f in frames if isinstance(f, EndFrame)]
            if not (len(ends) == 1 and ends[0].status == "ok"):
                out.incomplete.append(f"{rid}: {len(audio)} audio frames, end markers {ends!r:.120}")
            header = [entry_id for entry_id, f in frames if isinstance(f, HeaderFrame)]
            if header and _ms_of(header[0]) > _ms_of(frames[0][0]):
                out.late_headers += 1  # the gateway wrote the header after audio of the request
            if header and audio and first_wall:
                header_ms, frame_ms = _ms_of(header[0]), _ms_of(audio[0])
                parts = (header_ms - sent_wall * 1000, frame_ms - header_ms, first_wall * 1000 - frame_ms)
                out.gw_in_ms.append(parts[0])
                out.worker_ms.append(parts[1])
                out.gw_out_ms.append(parts[2])
                out.traced.append((out.ttfa_ms[-1], *parts))
    return out


# -- the hostile tenant (its own process) ----------------------------------------------------


@dataclass
class Tally:
    http: Counter[str] = field(default_factory=Counter)
    ws_close: Counter[str] = field(default_factory=Counter)
    ws_events: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    poison: int = 0
    forged_against: set[str] = field(default_factory=set)
    events_open: int = 0
    events_peak: int = 0
    sockets_open: int = 0
    sockets_peak: int = 0

    def opened(self, kind: str, delta: int) -> None:
        if kind == "events":
            self.events_open += delta
            self.events_peak = max(self.events_peak, self.events_open)
        else:
            self.sockets_open += delta
            self.sockets_peak = max(self.sockets_peak, self.sockets_open)


@dataclass(frozen=True)
class Attack:
    base: str
    key: str
    url: str
    streams: int
    sockets: int
    flooders: int
    oversizers: int
    retry_s: float
    parts: frozenset[str]


def attack(cfg: Attack, stop: Any, ready: Any, results: Any, alice_ids: Any) -> None:
    """Process target: attack as mallory until ``stop`` is set, then put the tally on ``results``."""
    asyncio.run(_attack(cfg, stop, ready, results, alice_ids, Tally()))


def _tally_dict(tally: Tally) -> dict[str, Any]:
    return {
        "http": dict(tally.http),
        "ws_close": dict(tally.ws_close),
        "ws_events": dict(tally.ws_events),
        "errors": dict(tally.errors),
        "poison": tally.poison,
        "forged_against": sorted(tally.forged_against),
        "events_peak": tally.events_peak,
        "sockets_peak": tally.sockets_peak,
    }


async def _attack(cfg: Attack, stop: Any, ready: Any, results: Any, alice_ids: Any, tally: Tally) -> None:
    pool: list[str] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=cfg.streams + 64)
    timeout = httpx.Timeout(60, read=None)
    auth = {"Authorization": f"Bearer {cfg.key}"}
    async with httpx.AsyncClient(base_url=cfg.base, headers=auth, timeout=timeout, limits=limits) as client:

        async def flood(i: int) -> None:
            n = i
            while True:
                n += 1
                try:
                    resp = await client.post("/v1/requests", json={"input": FLOOD_TEXTS[n % 2], "voice": "jm_kumo"})
                    tally.http[f"POST /v1/requests 64KB {resp.status_code}"] += 1
                    if resp.status_code == 202:
                        pool.append(resp.json()["id"])
                        del pool[:-64]
                except httpx.HTTPError as exc:
                    tally.errors[f"64KB {type(exc).__name__}"] += 1
                    await asyncio.sleep(cfg.retry_s)

        async def oversize(i: int) -> None:
            n = i
            while True:
                n += 1

                async def chunked() -> AsyncIterator[bytes]:
                    for k in range(0, len(OVERSIZE), 65536):
                        yield OVERSIZE[k : k + 65536]

                length = n % 2 == 0
                try:
                    resp = await client.post(
                        "/v1/audio/speech",
                        content=OVERSIZE if length else chunked(),
                        headers={"Content-Type": "application/json"},
                    )
                    what = "with length" if length else "chunked"
                    tally.http[f"POST /v1/audio/speech 2MB {what} {resp.status_code}"] += 1
                except httpx.HTTPError as exc:
                    tally.errors[f"2MB {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.1)

        async def hold_events(i: int) -> None:
            while True:
                if not pool:
                    await asyncio.sleep(0.2)
                    continue
                rid = random.choice(pool)
                try:
                    async with client.stream("GET", f"/v1/requests/{rid}/events") as resp:
                        tally.http[f"GET events {resp.status_code}"] += 1
                        if resp.status_code != 200:
                            await resp.aread()
                            await asyncio.sleep(cfg.retry_s)
                            continue
                        tally.opened("events", 1)
                        try:
                            async for _ in resp.aiter_raw():
                                pass  # hold it open until the request ends
                        finally:
                            tally.opened("events", -1)
                except httpx.HTTPError as exc:
                    tally.errors[f"events {type(exc).__name__}"] += 1
                    await asyncio.sleep(cfg.retry_s)

        ws_url = cfg.base.replace("http://", "ws://") + f"/v1/ws?api_key={cfg.key}"
        ws_body = json.dumps({"input": FLOOD_TEXTS[1], "voice": "jm_kumo"})

        async def hold_socket(i: int) -> None:
            while True:
                served = False
                try:
                    async with websockets.connect(ws_url, max_size=None, open_timeout=60) as ws:
                        await ws.send(ws_body)
                        try:
                            async for msg in ws:
                                if not isinstance(msg, str):
                                    continue
                                event = json.loads(msg)
                                kind = event.get("event")
                                tally.ws_events[f"{kind} {event.get('status', '')}".strip()] += 1
                                if not served:
                                    served = True
                                    tally.opened("sockets", 1)
                                if kind in ("error", "end"):
                                    await asyncio.sleep(cfg.retry_s)
                                    await ws.send(ws_body)
                        finally:
                            if served:
                                tally.opened("sockets", -1)
                    tally.ws_close[str(ws.close_code)] += 1
                except websockets.ConnectionClosed as exc:
                    tally.ws_close[str(exc.rcvd.code if exc.rcvd else None)] += 1
                except websockets.InvalidStatus as exc:  # refused at the handshake (HTTP 429 / 503)
                    tally.ws_close[f"HTTP {exc.response.status_code}"] += 1
                except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                    tally.errors[f"ws {type(exc).__name__}"] += 1
                await asyncio.sleep(cfg.retry_s)

        async def poison() -> None:
            r = async_client(RedisSettings.from_dsn(cfg.url))
            keys = Keys()
            enqueue = r.register_script(script_source(ENQUEUE))
            alice: str | None = None
            while True:
                with contextlib.suppress(queue.Empty):
                    while True:
                        alice = alice_ids.get_nowait()
                for lane in LANES:
                    stream = keys.queue("mallory", lane)
                    await r.xadd(stream, {"junk": os.urandom(24)})
                    await r.xadd(stream, {"r": "not-a-request", "p": b"\xc1\xff\x00garbage", "c": "-7"})
                    tally.poison += 2
                victims = ["s1." + "A" * 22, "s0." + "B" * 22]
                if alice:
                    victims.append(alice)
                    tally.forged_against.add(alice)
                for victim in victims:
                    fake = new_request_id(keys.shard)  # a request hash key of its own, deleted after
                    job = SegmentJob(victim, 0, "你好", "jm_kumo", "zh", 1.0, 0, 1)
                    key_list = keys.enqueue_keys("mallory", keys.request(fake))
                    args: list[Any] = ["mallory", victim, "jm_kumo", int(time.time() * 1000), 0, 60, GROUP, 1,
                                       1, 2, encode_segment(job)]  # fmt: skip
                    try:
                        await enqueue(keys=key_list, args=args)
                        tally.poison += 1
                    except Exception as exc:  # a full queue refuses forged entries too
                        tally.errors[f"forge {str(exc).split()[0]}"] += 1
                    await r.delete(key_list[0])
                await asyncio.sleep(1.0)

        # fill mallory's queue first, so the event streams have requests of their own to follow
        for n in range(12):
            with contextlib.suppress(httpx.HTTPError):
                resp = await client.post("/v1/requests", json={"input": FLOOD_TEXTS[n % 2], "voice": "jm_kumo"})
                tally.http[f"POST /v1/requests 64KB {resp.status_code}"] += 1
                if resp.status_code == 202:
                    pool.append(resp.json()["id"])
        on = cfg.parts
        tasks = [asyncio.ensure_future(poison())] if "poison" in on else []
        tasks += [asyncio.ensure_future(flood(i)) for i in range(cfg.flooders if "flood" in on else 0)]
        tasks += [asyncio.ensure_future(oversize(i)) for i in range(cfg.oversizers if "oversize" in on else 0)]
        tasks += [asyncio.ensure_future(hold_events(i)) for i in range(cfg.streams if "events" in on else 0)]
        tasks += [asyncio.ensure_future(hold_socket(i)) for i in range(cfg.sockets if "sockets" in on else 0)]
        await asyncio.sleep(2.0)  # every task has made its first attempt
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    tally.errors[f"task died: {task.exception()!r:.80}"] += 1
                    tasks.remove(task)
        results.put(_tally_dict(tally))  # before the teardown, which may take a while with 600 connections
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- watching the processes ----------------------------------------------------------------


class Watch:
    """Polls the workers (exits) and the gateway (RSS) in a thread."""

    def __init__(self, workers: Sequence[mp.process.BaseProcess], gateway: psutil.Process, r: Any) -> None:
        self.workers, self.gateway, self.r = workers, gateway, r
        self.clients_peak = self.blocked_peak = 0
        self.exits: dict[str, int | None] = {}
        self.rss_start = self.rss_peak = self.rss_end = gateway.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for p in self.workers:
                if p.exitcode is not None and p.name not in self.exits:
                    self.exits[p.name] = p.exitcode
            with contextlib.suppress(psutil.Error):
                self.rss_end = self.gateway.memory_info().rss
                self.rss_peak = max(self.rss_peak, self.rss_end)
            with contextlib.suppress(Exception):
                info = self.r.info("clients")
                self.clients_peak = max(self.clients_peak, int(info["connected_clients"]))
                self.blocked_peak = max(self.blocked_peak, int(info["blocked_clients"]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class HealthProbe:
    """``GET /healthz`` (no Redis, no auth) every 100 ms: how long the gateway's event loop takes to answer."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.wait(0.1):
                t0 = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    client.get("/healthz")
                    self.ms.append((time.perf_counter() - t0) * 1000)

    def take(self) -> list[float]:
        out, self.ms = self.ms, []
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds of each process so far; ``(machine)``: busy seconds of all cores together."""
    machine = psutil.cpu_times()
    busy = machine.user + machine.nice + machine.system + machine.irq + machine.softirq + getattr(machine, "steal", 0.0)
    out: dict[str, float] = {"(machine)": busy}
    for name, p in procs.items():
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[name] = t.user + t.system
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after if k in before}


# -- the run -------------------------------------------------------------------------------


def _p(ms: list[float], p: float) -> float:
    return pct(ms, p) if ms else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    with EmbeddedRedis() as server, contextlib.ExitStack() as cleanup:
        r = sync_client(RedisSettings.from_dsn(server.url))
        keys = Keys()
        Tenants(r).set("mallory", TenantPolicy(max_queued=args.max_queued))
        alice_key, _ = ApiKeys(r).add("alice", "polite")
        mallory_key, _ = ApiKeys(r).add("mallory", "hostile")
        engine, config = partial(paced_engine, 3, 0.03), paced_config(5.0, args.reserve)
        workers = start_workers(server.url, args.workers, engine, config, prefix="paced-")
        cleanup.callback(stop_processes, workers)
        gateway = start_gateway(server.url, workers=args.workers, deadline_s=60)
        gw, base = gateway.proc, gateway.base
        cleanup.callback(gateway.stop)
        procs = {
            "gateway": psutil.Process(gw.pid),
            "bench (B)": psutil.Process(),
            "redis": psutil.Process(int(r.info()["process_id"])),
        }
        procs |= {p.name: psutil.Process(p.pid) for p in workers if p.pid is not None}
        watch = Watch(workers, procs["gateway"], sync_client(RedisSettings.from_dsn(server.url)))
        polite_loop(base, alice_key, r, 2.0, None)  # warm-up: connections, scripts, the rate estimate
        probe = HealthProbe(base)

        cpu0 = cpu_seconds(procs)
        t0 = time.monotonic()
        probe.take()
        alone = polite_loop(base, alice_key, r, args.seconds, None)
        alone.health_ms = probe.take()
        alone.elapsed_s = time.monotonic() - t0
        alone.cpu_s = cpu_delta(cpu0, cpu_seconds(procs))
        alone.machine_busy_pct = 100 * alone.cpu_s.pop("(machine)") / alone.elapsed_s / (os.cpu_count() or 1)

        stop, ready, results, alice_ids = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue(maxsize=64)
        parts = frozenset(p.strip() for p in args.attack.split(",") if p.strip())
        cfg = Attack(
            base,
            mallory_key,
            server.url,
            args.streams,
            args.sockets,
            args.flooders,
            args.oversizers,
            args.retry_s,
            parts,
        )
        attacker = ctx.Process(target=attack, args=(cfg, stop, ready, results, alice_ids), daemon=True)
        attacker.start()
        cleanup.callback(stop_processes, [attacker])
        if not ready.wait(120):
            raise SystemExit("the attacker did not start")
        procs["attacker"] = psutil.Process(attacker.pid)
        if args.attacker_nice:  # the attacker's own CPU is not the service's when it runs elsewhere
            procs["attacker"].nice(args.attacker_nice)
        cpu0 = cpu_seconds(procs)
        t0 = time.monotonic()
        probe.take()
        hostile = polite_loop(base, alice_key, r, args.seconds, alice_ids)
        hostile.health_ms = probe.take()
        hostile.elapsed_s = time.monotonic() - t0
        hostile.cpu_s = cpu_delta(cpu0, cpu_seconds(procs))
        hostile.machine_busy_pct = 100 * hostile.cpu_s.pop("(machine)") / hostile.elapsed_s / (os.cpu_count() or 1)
        stop.set()
        probe.close()
        try:
            tally: dict[str, Any] = results.get(timeout=60)
        except queue.Empty:
            tally = {"http": {}, "ws_close": {}, "ws_events": {}, "errors": {"attacker gave no tally": 1}}
        attacker.join(10)
        if attacker.is_alive():
            attacker.kill()
        time.sleep(0.5)
        watch.close()
        touched = [rid for rid in tally.get("forged_against", []) if _touched(r, keys, rid)]
        dead = int(r.xlen(keys.dead()))
        dead_entries: Any = r.xrange(keys.dead(), count=10_000)
        reasons = Counter(f[b"reason"].decode().split(":")[0] for _, f in dead_entries)
        gateway_alive = gw.poll() is None
        t0 = time.monotonic()
        gw.terminate()
        try:
            gw.wait(15)
            gateway_stop = f"stopped {time.monotonic() - t0:.1f} s after SIGTERM"
        except subprocess.TimeoutExpired:
            gateway_stop = "still running 15 s after SIGTERM: killed"
        stop_processes(workers)
        log = gateway.log_text()
        if args.gateway_log:
            with open(args.gateway_log, "w", encoding="utf-8") as f:
                f.write(log)

    a_5xx = sum(n for k, n in tally["http"].items() if k.split()[-1].startswith("5") and not k.endswith(" 503"))
    b_5xx = sum(n for s, n in (alone.statuses + hostile.statuses).items() if 500 <= s < 600 and s != 503)
    ws_1011 = int(tally["ws_close"].get("1011", 0))
    tracebacks = log.count("Traceback")
    return {
        "seconds": args.seconds,
        "workers": args.workers,
        "alone": _phase_dict(alone),
        "hostile": _phase_dict(hostile),
        "ratio_p50": _p(hostile.ttfa_ms, 50) / _p(alone.ttfa_ms, 50),
        "ratio_p99": _p(hostile.ttfa_ms, 99) / _p(alone.ttfa_ms, 99),
        "attacker": tally,
        "server_errors_other_than_503": a_5xx + b_5xx + ws_1011,
        "gateway_tracebacks": tracebacks,
        "gateway_log_tail": log[-2000:] if tracebacks else "",
        "gateway_alive": gateway_alive,
        "gateway_stop": gateway_stop,
        "worker_exits": watch.exits,
        "gateway_rss_mb": {
            "start": watch.rss_start / 2**20,
            "peak": watch.rss_peak / 2**20,
            "end": watch.rss_end / 2**20,
        },
        "forged_against": len(tally.get("forged_against", [])),
        "touched": touched,
        "redis_clients_peak": {"connected": watch.clients_peak, "blocked": watch.blocked_peak},
        "dead_letters": dead,
        "dead_letter_reasons": dict(reasons),
    }


def _touched(r: Any, keys: Keys, rid: str) -> bool:
    """Whether anything but its own audio and one ok end marker landed on alice's request."""
    frames = [decode_frame(f[b"f"]) for _, f in r.xrange(keys.audio(rid))]
    ends = [f for f in frames if isinstance(f, EndFrame)]
    kinds = {type(f).__name__ for f in frames}
    return not (len(ends) == 1 and ends[0].status == "ok" and kinds <= {"HeaderFrame", "AudioFrame", "EndFrame"})


def _phase_dict(ph: Phase) -> dict[str, Any]:
    def pcts(ms: list[float]) -> dict[str, float]:
        return {
            "p50": _p(ms, 50),
            "p90": _p(ms, 90),
            "p99": _p(ms, 99),
            "mean": statistics.fmean(ms) if ms else float("nan"),
        }

    return {
        "requests": len(ph.ttfa_ms),
        "ttfa_ms": pcts(ph.ttfa_ms),
        "gateway_in_ms": pcts(ph.gw_in_ms),
        "worker_ms": pcts(ph.worker_ms),
        "gateway_out_ms": pcts(ph.gw_out_ms),
        "healthz_ms": pcts(ph.health_ms),
        "slowest": [[round(x, 1) for x in t] for t in sorted(ph.traced, reverse=True)[:5]],
        "statuses": {str(k): v for k, v in sorted(ph.statuses.items())},
        "client_errors": dict(ph.errors),
        "non_2xx": ph.non_2xx(),
        "incomplete": ph.incomplete,
        "late_headers": ph.late_headers,
        "machine_busy_pct": ph.machine_busy_pct,
        "cpu_pct": {k: 100 * v / ph.elapsed_s for k, v in sorted(ph.cpu_s.items())} if ph.elapsed_s else {},
    }


def report(res: dict[str, Any]) -> None:
    a, h = res["alone"], res["hostile"]

    def ok(good: bool) -> str:
        return "ok" if good else "MISSED"

    print(
        f"{res['workers']} paced workers (90 ms per segment), {res['seconds']:.0f} s per phase; B = alice, A = mallory"
    )
    print(f"{'B, time to first audio (ms)':<34} {'p50':>8} {'p90':>8} {'p99':>8} {'mean':>8} {'n':>6}")
    for label, ph in (("alone", a), ("under attack", h)):
        t = ph["ttfa_ms"]
        print(f"  {label:<32} {t['p50']:>8.1f} {t['p90']:>8.1f} {t['p99']:>8.1f} {t['mean']:>8.1f} {ph['requests']:>6}")
    print(
        f"  {'ratio under attack / alone':<32} {res['ratio_p50']:>7.2f}x {'':>8} {res['ratio_p99']:>7.2f}x"
        f"   target p99 <= {TARGET_P99_RATIO}x: {ok(res['ratio_p99'] <= TARGET_P99_RATIO)}"
    )
    print("B's time, by part (ms; from the stream ids)      alone p50/p99      under attack p50/p99")
    for part, label in (
        ("gateway_in_ms", "send -> enqueued (gateway in)"),
        ("worker_ms", "enqueued -> first frame written (queue + 30 ms)"),
        ("gateway_out_ms", "first frame written -> first byte (gateway out)"),
        ("healthz_ms", "GET /healthz every 100 ms (event-loop lag)"),
    ):
        x, y = a[part], h[part]
        print(f"  {label:<48} {x['p50']:>6.1f} / {x['p99']:>6.1f}      {y['p50']:>7.1f} / {y['p99']:>7.1f}")
    print(f"  slowest under attack (ttfa, in, worker, out): {h['slowest']}")
    b_bad = a["non_2xx"] + h["non_2xx"]
    print(
        f"B non-2xx: {b_bad} (alone {a['statuses']}, under attack {h['statuses']}, client errors "
        f"{h['client_errors'] or 0})   target 0: {ok(b_bad == 0)}"
    )
    incomplete = a["incomplete"] + h["incomplete"]
    print(f"B answers with incomplete audio: {len(incomplete)}   target 0: {ok(not incomplete)}")
    for line in incomplete[:3]:
        print(f"  {line}")
    late = a["late_headers"] + h["late_headers"]
    print(f"B requests whose header the gateway wrote after their audio: {late} (alone {a['late_headers']})")
    print(
        f"alice requests named by A's forged entries: {res['forged_against']}; touched by them: "
        f"{res['touched']}   target 0: {ok(not res['touched'])}"
    )
    att = res["attacker"]
    print("A's answers:")
    for k, n in sorted(att["http"].items()):
        print(f"  {k:<52} {n:>8,}")
    print(f"  WebSocket close codes {att['ws_close']}; events on open sockets {att['ws_events']}")
    print(
        f"  held at once: {att.get('events_peak', 0)} event streams, {att.get('sockets_peak', 0)} WebSockets; "
        f"poison entries written {att.get('poison', 0)}; client-side errors {att['errors'] or 0}"
    )
    bad = res["server_errors_other_than_503"]
    print(
        f"5xx other than 503 (B, A, WebSocket 1011): {bad}; gateway tracebacks {res['gateway_tracebacks']}   "
        f"target 0: {ok(bad == 0 and res['gateway_tracebacks'] == 0)}"
    )
    exits = res["worker_exits"]
    print(
        f"worker exits: {len(exits)} {exits or ''}   target 0: {ok(not exits)}; gateway alive at the end: "
        f"{res['gateway_alive']}, {res['gateway_stop']}"
    )
    rss = res["gateway_rss_mb"]
    print(f"gateway RSS: start {rss['start']:.0f} MB, peak {rss['peak']:.0f} MB, end {rss['end']:.0f} MB")
    print(f"Redis clients at most: {res['redis_clients_peak']}")
    print(f"dead-letter stream: {res['dead_letters']} entries {res['dead_letter_reasons']}")
    for label, ph in (("alone", a), ("under attack", h)):
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in ph["cpu_pct"].items())
        ours = sum(ph["cpu_pct"].values()) / (os.cpu_count() or 1)
        print(
            f"CPU, {label}: machine {ph['machine_busy_pct']:.0f} % busy of {os.cpu_count()} cores "
            f"(this run {ours:.0f} %, others {ph['machine_busy_pct'] - ours:.0f} %); % of one core: {cpu}"
        )
    if res["gateway_log_tail"]:
        print("gateway log (tail):\n" + res["gateway_log_tail"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument(
        "--attacker-nice",
        type=int,
        default=0,
        help="scheduling niceness of A's client process (19 models an attacker on other machines: "
        "its CPU does not compete with the gateway's on this box); default 0",
    )
    ap.add_argument(
        "--reserve",
        type=int,
        default=1,
        help="workers kept for tenants back from idle (chorus worker --reserve); 0: work-conserving",
    )
    ap.add_argument("--streams", type=int, default=300, help="event streams A tries to hold")
    ap.add_argument("--sockets", type=int, default=300, help="WebSockets A tries to hold")
    ap.add_argument("--flooders", type=int, default=4, help="A's concurrent loops posting 64 KB texts")
    ap.add_argument("--oversizers", type=int, default=2, help="A's concurrent loops posting 2 MB bodies")
    ap.add_argument("--retry-s", type=float, default=1.0, help="A's pause after a refused stream or socket")
    ap.add_argument("--max-queued", type=int, default=2000, help="A's queue cap (segments)")
    ap.add_argument(
        "--attack", default=",".join(PARTS), help=f"what A does, comma-separated (default all: {','.join(PARTS)})"
    )
    ap.add_argument("--gateway-log", default="", help="write the gateway's stderr to this file")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        report(res)


if __name__ == "__main__":
    main()
