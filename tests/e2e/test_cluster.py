"""chorus on a real Redis Cluster (3 masters, 3 replicas on loopback): one shard, every component.

Given the URL of any one node, clients detect cluster mode (or take ``redis+cluster://``), the
shard's keys share the ``{s0}`` slot so every script runs on one node, audio streams spread over
the masters by their own ``{r:<id>}`` tags, and a worker rides out a master's kill -9.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import partial

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from broker.producer import Producer
from chorus.launch import start_gateway
from chorus.testing import paced_config, paced_engine, start_worker, stop_processes, wait_for_workers
from chorus_client import AsyncClient, Client, RequestStatus, Voice
from chorus_client.constants import Durability
from chorus_client.errors import RedisUnavailable, RequestCancelled
from chorus_client.keys import Keys
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import async_client, is_cluster, sync_client
from shared.embedded import EmbeddedCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster() as c:
        yield c


@pytest.fixture(scope="module")
def stack(cluster: EmbeddedCluster) -> Iterator[redis.Redis]:
    r = sync_client(RedisSettings.from_dsn(cluster.url))
    proc = start_worker(cluster.url, "cluster-w1", partial(paced_engine, 3, 0.01), paced_config(2.0))
    try:
        wait_for_workers(r, Keys(), 1, procs=[proc])
        yield r
    finally:
        stop_processes([proc])
        r.close()


def test_cluster_mode_is_detected_or_declared(cluster: EmbeddedCluster) -> None:
    assert is_cluster(RedisSettings.from_dsn(cluster.url))
    assert isinstance(sync_client(RedisSettings.from_dsn(cluster.url)), RedisCluster)
    declared = RedisSettings.from_dsn(cluster.url.replace("redis://", "redis+cluster://", 1))
    assert declared.cluster is True and declared.url().startswith("redis://")
    plain = RedisSettings.from_dsn(cluster.url + "?cluster=no")
    assert plain.cluster is False and not isinstance(sync_client(plain), RedisCluster)


def test_enqueue_work_and_listen_through_the_cluster(stack: redis.Redis) -> None:
    res = Producer(stack).enqueue("你好，世界！今天天气很好。", tenant="acme")
    frames = list(Subscriber(stack).frames(res.request_id, timeout_s=20))
    assert {f.segment for f in frames} == set(range(res.segments))
    assert [(f.segment, f.index) for f in frames] == sorted((f.segment, f.index) for f in frames)


def test_the_light_client_sync_and_async(cluster: EmbeddedCluster, stack: redis.Redis) -> None:
    client = Client(stack)
    req = client.enqueue("一。二。三。", tenant="light", voice="jm_kumo")
    assert req.wait(timeout_s=20).status == RequestStatus.DONE
    victim = client.enqueue("一。" * 40, tenant="light", voice="jm_kumo", priority="batch")
    assert victim.cancel() is True
    with pytest.raises(RequestCancelled):
        list(victim.frames(timeout_s=10))

    async def main() -> None:
        aclient = AsyncClient(async_client(RedisSettings.from_dsn(cluster.url)))
        areq = await aclient.enqueue("你好。", tenant="light", voice="jm_kumo")
        assert len([f async for f in areq.frames(timeout_s=20)]) > 0
        await aclient.redis.aclose()

    asyncio.run(main())


def test_audio_streams_spread_over_the_masters(cluster: EmbeddedCluster, stack: redis.Redis) -> None:
    producer = Producer(stack)
    ids = [producer.enqueue("你好。", tenant="spread", priority="batch").request_id for _ in range(24)]
    owners = {cluster.master_of(key_slot(Keys().audio(rid).encode())).port for rid in ids}
    assert len(owners) > 1, "every audio stream on one master"
    for rid in ids:
        assert list(Subscriber(stack).frames(rid, timeout_s=20))


def test_cli_commands_take_a_node_url(cluster: EmbeddedCluster, stack: redis.Redis) -> None:
    for args in (["tenants", "set", "acme", "--weight", "2"], ["tenants", "list"], ["stats"]):
        res = subprocess.run(
            [sys.executable, "-m", "chorus", *args, "--redis", cluster.url], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0, res.stdout + res.stderr


def test_a_worker_rides_out_a_master_kill(cluster: EmbeddedCluster, stack: redis.Redis) -> None:
    """kill -9 of the master that owns the shard's slot: its replica takes over, the worker backs off
    and serves on, and a request enqueued after the failover is heard whole."""
    old = cluster.master_of(key_slot(b"{s0}"))
    cluster.kill(old)
    cluster.failover_wait(old, deadline_s=15)
    r = sync_client(RedisSettings.from_dsn(cluster.url))  # a node that is up
    res = None
    for _ in range(50):  # the client's first call may meet the dead node: retry as any producer does
        try:
            res = Producer(r).enqueue("你好，世界！", tenant="after")
            break
        except Exception:
            time.sleep(0.2)
    assert res is not None, "no enqueue succeeded after the failover"
    frames = list(Subscriber(r).frames(res.request_id, timeout_s=30))
    assert {f.segment for f in frames} == set(range(res.segments))
    cluster.restart(old)


def test_the_gateway_serves_from_a_node_url(cluster: EmbeddedCluster, stack: redis.Redis) -> None:
    gateway = start_gateway(cluster.url, "--no-auth", workers=1, deadline_s=60)
    try:
        body = json.dumps({"model": "tts-1", "voice": "jm_kumo", "input": "你好，世界！", "response_format": "pcm"})
        speech = urllib.request.Request(
            f"{gateway.base}/v1/audio/speech", data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(speech, timeout=30) as resp:
            assert resp.status == 200 and len(resp.read()) > 0
        native = urllib.request.Request(
            f"{gateway.base}/v1/requests",
            data=json.dumps({"input": "你好。", "voice": "jm_kumo"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(native, timeout=30) as resp:
            rid = json.loads(resp.read())["id"]
        with urllib.request.urlopen(f"{gateway.base}/v1/requests/{rid}/events", timeout=30) as resp:
            events = resp.read().decode()
        assert "event: audio" in events and "event: end" in events
    finally:
        gateway.stop()


def test_with_replica_durability_a_master_kill_loses_nothing_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """durability=replica on the producer and the worker: requests accepted just before kill -9 of the
    master that owns the shard are all heard, whole and once, after its replica takes over."""
    monkeypatch.setenv("CHORUS_DURABILITY", "replica")  # the worker process reads it at start
    with EmbeddedCluster() as c:
        r = sync_client(RedisSettings.from_dsn(c.url))
        worker = start_worker(c.url, "durable-w", partial(paced_engine, 2, 0.01), paced_config(5.0))
        try:
            wait_for_workers(r, Keys(), 1, procs=[worker])
            producer = Producer(r, durability=Durability.REPLICA)
            accepted = [producer.enqueue("你好，世界！", tenant=f"t{i % 3}").request_id for i in range(30)]
            old = c.master_of(key_slot(b"{s0}"))
            c.kill(old)  # at once: some requests are queued, some in flight, some done
            c.failover_wait(old, deadline_s=15)
            # the promoted replica has no replica of its own: durable writes wait (NOREPLICAS, backoff)
            # until the old master is back as its replica, as an operator's restart would bring it
            c.restart(old)
            after = sync_client(RedisSettings.from_dsn(c.url))
            for rid in accepted:
                frames = list(Subscriber(after).frames(rid, timeout_s=60))
                heard = [(f.segment, f.index) for f in frames]
                assert heard == sorted(set(heard)) and {s for s, _ in heard} == {0, 1}, rid
            assert worker.is_alive(), "the worker rode out the failover"
        finally:
            stop_processes([worker])


def test_replica_durability_without_a_replica_is_refused_as_an_outage(r: redis.Redis) -> None:
    """On one server (no replica) a durable enqueue cannot be confirmed: RedisUnavailable NOREPLICAS
    after its retries (the master has it; a retry with the same request id is idempotent)."""
    client = Client(r, durability="replica", voices=lambda name, text: Voice("jm_kumo", "zh", 24000))
    with pytest.raises(RedisUnavailable) as err:
        client.enqueue("你好。", tenant="acme", voice="jm_kumo")
    assert err.value.code == "NOREPLICAS"


def test_durable_enqueues_from_both_clients_on_the_cluster(cluster: EmbeddedCluster, stack: redis.Redis) -> None:
    voices = Client(stack).voices
    sync_req = Client(stack, durability="replica", voices=voices).enqueue("你好。", tenant="d", voice="jm_kumo")
    assert sync_req.wait(timeout_s=20).status == RequestStatus.DONE

    async def main() -> None:
        aclient = AsyncClient(async_client(RedisSettings.from_dsn(cluster.url)), durability="replica")
        areq = await aclient.enqueue("世界。", tenant="d", voice="jm_kumo")
        assert (await areq.wait(timeout_s=20)).status == RequestStatus.DONE
        await aclient.redis.aclose()

    asyncio.run(main())


def test_a_live_slot_migration_loses_and_doubles_nothing() -> None:
    """The shard's slot moves to another master (IMPORTING/MIGRATING, keys in small batches, then
    SETSLOT NODE) while requests are enqueued and served: every accepted request is heard whole and
    once, and the queue lives on the new master afterwards."""
    with EmbeddedCluster() as c:
        r = sync_client(RedisSettings.from_dsn(c.url))
        worker = start_worker(c.url, "migrating-w", partial(paced_engine, 2, 0.01), paced_config(5.0))
        try:
            wait_for_workers(r, Keys(), 1, procs=[worker])
            producer, accepted, stop = Producer(r), [], threading.Event()

            def flow() -> None:
                p = Producer(sync_client(RedisSettings.from_dsn(c.url)))
                while not stop.is_set():
                    try:
                        accepted.append(p.enqueue("你好，世界！", tenant="mig").request_id)
                    except Exception:  # a refusal during the move is the producer's to retry
                        time.sleep(0.02)

            accepted += [producer.enqueue("你好，世界！", tenant=f"t{i % 3}").request_id for i in range(10)]
            loader = threading.Thread(target=flow, daemon=True)
            loader.start()
            slot = key_slot(b"{s0}")
            source = c.master_of(slot)
            target = next(n for n in c.masters() if n is not source)
            moved = c.migrate_slot(slot, target, batch=3, pause_s=0.05)
            time.sleep(0.5)
            stop.set()
            loader.join(10)
            assert moved > 0 and c.master_of(slot) is target
            for rid in accepted:
                heard = [(f.segment, f.index) for f in Subscriber(r).frames(rid, timeout_s=60)]
                assert heard == sorted(set(heard)) and {s for s, _ in heard} == {0, 1}, rid
            assert worker.is_alive()
        finally:
            stop_processes([worker])
