"""Many shards on a real Redis Cluster (3 masters, 3 replicas): tenants on every shard, workers that
serve them all and wake for any of them, cancellation, reclaim after a kill -9, and a tenant moved
between shards while it enqueues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest
import redis
from redis.crc import key_slot

from broker.claim import Claimer
from broker.placement import Shards
from broker.policy import TenantPolicy
from broker.producer import Producer
from broker.tenants import Tenants
from chorus.testing import paced_config, paced_engine, start_worker, stop_processes, wait_for_workers
from chorus_client import Client
from chorus_client.errors import RequestCancelled
from chorus_client.keys import Keys, home_shard, shard_of
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import sync_client
from shared.embedded import EmbeddedCluster

pytestmark = pytest.mark.slow

SHARDS = 6


def homed(shard: str, n: int = SHARDS, start: int = 0) -> str:
    return next(f"t{i}" for i in range(start, start + 100_000) if home_shard(f"t{i}", n) == shard)


def heard_once(r: redis.Redis, rid: str, segments: int) -> None:
    got = [(f.segment, f.index) for f in Subscriber(r).frames(rid, timeout_s=60)]
    assert got == sorted(set(got)) and {s for s, _ in got} == set(range(segments)), rid


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster() as c:
        r = sync_client(RedisSettings.from_dsn(c.url))
        Shards(r).grow(SHARDS)
        r.close()
        yield c


@pytest.fixture(scope="module")
def r(cluster: EmbeddedCluster) -> Iterator[redis.Redis]:
    client = sync_client(RedisSettings.from_dsn(cluster.url))
    yield client
    client.close()


def test_balance_spreads_the_shards_evenly_over_the_masters_while_they_serve(
    cluster: EmbeddedCluster, r: redis.Redis
) -> None:
    """CRC16 puts {s0} … {s5} four on one master of three; `balance` moves slots live (requests
    queued in a moved shard stay whole) until every master serves two."""
    shards = Shards(r)
    queued = [Producer(r).enqueue(["你好", "世界"], tenant=homed(s, start=7000)).request_id for s in shards.names()]
    before = shards.layout()
    assert len(before) == 3 and max(len(v) for v in before.values()) >= 3, before  # CRC16's spread
    moves = shards.balance()
    after = shards.layout()
    assert sorted(len(v) for v in after.values()) == [2, 2, 2], after
    assert moves and sum(m.keys for m in moves) > 0 and shards.plan() == []
    worker = start_worker(cluster.url, "after-balance", partial(paced_engine, 1, 0.0), paced_config(5.0))
    try:
        wait_for_workers(r, Keys(), 1, procs=[worker])
        for rid in queued:
            heard_once(r, rid, 2)
    finally:
        stop_processes([worker])


def test_an_idle_worker_wakes_for_work_on_any_shard(cluster: EmbeddedCluster, r: redis.Redis) -> None:
    """A worker that would otherwise sleep 30 s between looks serves a request on each shard within a
    second: the wake-up reaches it through per-shard blocking pops (lists of six slots)."""
    config = replace(paced_config(5.0), idle_wait_s=30.0)
    worker = start_worker(cluster.url, "waker", partial(paced_engine, 1, 0.0), config)
    try:
        wait_for_workers(r, Keys(), 1, procs=[worker])
        time.sleep(1.0)  # it looked everywhere once and sleeps
        producer = Producer(r)
        for shard in Shards(r).names():
            t0 = time.monotonic()
            res = producer.enqueue("你好", tenant=homed(shard))
            assert shard_of(res.request_id) == shard
            next(iter(Subscriber(r).frames(res.request_id, timeout_s=10)))
            assert time.monotonic() - t0 < 1.0, shard
            time.sleep(0.3)  # idle again
    finally:
        stop_processes([worker])


def test_every_shard_is_served_cancelled_and_reclaimed(cluster: EmbeddedCluster, r: redis.Redis) -> None:
    """Two workers serve tenants on all six shards; a long request on a shard other than s0 is
    cancelled; one worker is killed with kill -9 mid-segment and the other reclaims its work."""
    slow = partial(paced_engine, 4, 0.15)
    procs = [start_worker(cluster.url, f"w{i}", slow, paced_config(1.5)) for i in range(2)]
    try:
        wait_for_workers(r, Keys(), 2, procs=procs)
        producer = Producer(r)
        accepted = [(producer.enqueue(["你好", "世界"], tenant=homed(s)).request_id, 2) for s in Shards(r).names()]
        assert {shard_of(rid) for rid, _ in accepted} == set(Shards(r).names())
        client = Client(r)
        long = client.enqueue(["你好"] * 30, tenant=homed("s4", start=500), voice="jm_kumo")
        time.sleep(0.5)
        assert client.cancel(long.request_id)
        with pytest.raises(RequestCancelled):
            long.wait(timeout_s=30)
        more = [(producer.enqueue(["你好"] * 3, tenant=homed(s, start=900)).request_id, 3) for s in ("s1", "s3", "s5")]
        time.sleep(0.4)  # both workers are mid-segment
        os.kill(procs[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
        for rid, segments in accepted + more:
            heard_once(r, rid, segments)
    finally:
        stop_processes(procs)


def test_a_tenant_moves_between_shards_while_it_enqueues(cluster: EmbeddedCluster, r: redis.Redis) -> None:
    procs = [start_worker(cluster.url, f"m{i}", partial(paced_engine, 2, 0.01), paced_config(5.0)) for i in range(2)]
    try:
        wait_for_workers(r, Keys(), 2, procs=procs)
        tenant = homed("s1", start=2000)
        accepted: list[str] = []
        stop = threading.Event()

        def flow() -> None:
            p = Producer(sync_client(RedisSettings.from_dsn(cluster.url)))
            while not stop.is_set():
                accepted.append(p.enqueue(["你好", "世界"], tenant=tenant).request_id)
                time.sleep(0.01)

        loader = threading.Thread(target=flow, daemon=True)
        loader.start()
        time.sleep(0.5)
        source, left = Shards(r).move(tenant, "s4", wait_s=30)
        time.sleep(0.5)
        stop.set()
        loader.join(10)
        assert source == "s1" and left.empty
        shards = [shard_of(rid) for rid in accepted]
        assert "s1" in shards and shards[-1] == "s4" and shards == sorted(shards, key=lambda s: s != "s1")
        for rid in accepted:
            heard_once(r, rid, 2)
    finally:
        stop_processes(procs)


def test_a_claim_that_meets_a_half_moved_shard_retries_and_loses_nothing(
    cluster: EmbeddedCluster, r: redis.Redis
) -> None:
    """Mid-migration of shard s5's slot the lane streams have moved but the ring and counters have
    not: the claim script, which reads lane streams it finds on the ring (keys it cannot declare),
    must answer TRYAGAIN rather than take them for absent (that would zero the tenant's counters and
    drop it from the ring). Once the slot has moved, the same claim takes every entry."""
    keys = Keys().of_shard("s5")
    tenant = homed("s5", start=5000)
    Tenants(r).set(tenant, TenantPolicy(weight=2))
    Producer(r).enqueue(["你好", "世界", "再见", "好的"], tenant=tenant)
    claimer = Claimer(r, keys)
    assert len(claimer.claim("before-move", 1)) == 1
    # every key the claim declares must exist, or Redis answers TRYAGAIN before the script runs:
    # a leases entry (above), a policy, and another tenant on the ring
    r.rpush(keys.active(), "someone-else")
    slot = key_slot(b"{s5}")
    source = cluster.master_of(slot)
    target = next(n for n in cluster.masters() if n is not source)
    cluster.begin_migration(slot, target)
    cluster.migrate_keys(source, target, [keys.queue(tenant, lane) for lane in ("rt", "interactive")])
    src = source.client()
    with pytest.raises(redis.RedisError):  # TRYAGAIN, retried by redis-py until it gives up
        claimer.claim("mid-move", 3)
    assert int(src.hget(keys.depth(), tenant)) == 3  # nothing taken for absent
    cluster.migrate_slot(slot, target)
    got = claimer.claim("after-move", 3)
    assert sorted(item.lane for item in got) == ["interactive", "interactive", "interactive"]


def test_the_operator_commands_cover_every_shard(cluster: EmbeddedCluster, r: redis.Redis) -> None:
    """`chorus shards`, `tenants list/move`, `stats`, `keys` and `cancel` against a node URL see
    every shard (no worker runs: the queued work stays queued)."""

    def chorus(*args: str) -> str:
        res = subprocess.run(
            [sys.executable, "-m", "chorus", *args, "--redis", cluster.url], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    tenant = homed("s3", start=9000)
    rid = Producer(r).enqueue(["你好", "世界"], tenant=tenant).request_id
    chorus("tenants", "set", tenant, "--weight", "4")
    listing = chorus("shards")
    assert [line.split()[0] for line in listing.splitlines()[1:]] == Shards(r).names()
    assert tenant in chorus("tenants", "list") and tenant in chorus("stats")
    assert "s3 -> s1" in chorus("tenants", "move", tenant, "--to", "s1", "--wait", "0")
    assert "(shard s1)" in chorus("tenants", "list")
    stats = [line for line in chorus("stats").splitlines() if line.startswith(tenant) and "(all)" in line]
    assert stats and " 2 " in f" {stats[0]} "  # its 2 queued segments, still in s3
    chorus("cancel", rid)
    assert Client(r).status(rid).status == "cancelled"
    assert chorus("keys", "add", tenant).startswith("ck_") and tenant in chorus("keys", "list")


def test_scripts_survive_masters_that_never_loaded_them(cluster: EmbeddedCluster, r: redis.Redis) -> None:
    """A master just promoted, or just given a slot, has not loaded chorus's scripts (SCRIPT LOAD is
    not replicated): EVALSHA answers NOSCRIPT, and producers and workers load them again. SCRIPT
    FLUSH on every master makes that state for every shard at once, while a worker serves."""
    worker = start_worker(cluster.url, "noscript", partial(paced_engine, 1, 0.0), paced_config(5.0))
    try:
        wait_for_workers(r, Keys(), 1, procs=[worker])
        producer = Producer(r)
        heard_once(r, producer.enqueue(["你好"], tenant=homed("s2", start=11000)).request_id, 1)
        for master in cluster.masters():
            master.client().script_flush()
        for shard in Shards(r).names():
            heard_once(r, producer.enqueue(["你好", "世界"], tenant=homed(shard, start=12000)).request_id, 2)
        assert worker.is_alive()
    finally:
        stop_processes([worker])
