"""Enqueue as a shipped script (EVALSHA) or as a Redis Functions library (FCALL): what each costs.

Why the question: a client in another language must call the enqueue logic without
assembling Lua. Either the repository ships the assembled script (what chorus does:
``clients/*/lua/enqueue.lua``, called with EVALSHA and EVAL on NOSCRIPT), or the
logic becomes a Functions library that workers load and everyone calls with FCALL.
This loads the very same assembled text both ways (the library wraps it in one
registered function) and times N enqueues of one 2-segment request each: the
server's time per call (INFO commandstats) and the client's round trip.

    .venv/bin/python -m bench.script_call [--requests 3000]

Needs Redis >= 7.0 (Functions); on the embedded 6.2 fallback it reports the script only.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import redis

from bench.common import pct
from broker.producer import prepare
from chorus_client.keys import Keys
from chorus_client.scripts import ENQUEUE
from models.catalog import load_catalog
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedRedis

Calls = list[tuple[list[str], list[Any]]]
LIBRARY = "#!lua name=chorus_bench\nredis.register_function('enqueue', function(KEYS, ARGV)\n{body}\nend)\n"


def _requests(n: int, tag: str) -> Calls:
    keys, catalog = Keys(), load_catalog()
    out = []
    for i in range(n):
        req = prepare(["你好", "世界"], tenant=f"{tag}{i % 50}", keys=keys, catalog=catalog, priority="batch")
        out.append((req.keys, req.args))
    return out


def _time(r: redis.Redis, calls: Calls, how: str, command: str) -> tuple[float, list[float]]:
    r.config_resetstat()
    lat = []
    for key_list, args in calls:
        t0 = time.perf_counter()
        if how == "script":
            r.evalsha(ENQUEUE.sha, len(key_list), *key_list, *args)
        else:
            r.fcall("enqueue", len(key_list), *key_list, *args)
        lat.append((time.perf_counter() - t0) * 1e6)
    stats = r.info("commandstats")[f"cmdstat_{command}"]
    assert stats["calls"] == len(calls), stats
    return float(stats["usec_per_call"]), lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    with EmbeddedRedis() as server:
        r = sync_client(RedisSettings.from_dsn(server.url))
        version = r.info()["redis_version"]
        print(f"redis-server {version}; {args.requests} enqueues of a 2-segment request per row")
        r.script_load(ENQUEUE.source)
        rows = [("script (EVALSHA)", "script", "evalsha")]
        if int(version.split(".")[0]) >= 7:
            r.function_load(LIBRARY.format(body=ENQUEUE.source), replace=True)
            rows.append(("function (FCALL)", "function", "fcall"))
        # alternate the two, twice, so a drift of the machine's speed hits both
        results: dict[str, list[tuple[float, list[float]]]] = {how: [] for _, how, _ in rows}
        for round_ in range(2):
            for _, how, command in rows:
                r.flushall(asynchronous=False)
                if how == "function":
                    r.function_load(LIBRARY.format(body=ENQUEUE.source), replace=True)
                results[how].append(_time(r, _requests(args.requests, f"{how}{round_}-"), how, command))
        print(f"{'call':>18} {'redis us/call':>14} {'ratio':>6} {'client p50 us':>14} {'p99 us':>8}")
        base = None
        for label, how, _ in rows:
            usec = sum(u for u, _ in results[how]) / len(results[how])
            lat = [x for _, lats in results[how] for x in lats]
            base = base or usec
            print(f"{label:>18} {usec:>14.1f} {usec / base:>5.2f}x {pct(lat, 50):>14.0f} {pct(lat, 99):>8.0f}")


if __name__ == "__main__":
    main()
