"""Redis as operators run it: server-state errors, eviction, lost state, URLs, stalls, clocks, idle tenants.

Each test meets a fault on a real redis-server (its own when the fault would
disturb others) and checks that the worker process rides it out and serves the
next request, that producers get a typed, retryable error, and that no key is
left without an expiry or an owner.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from broker.claim import Claimer
from broker.producer import Producer
from chorus.cli import main
from chorus.testing import paced_engine, run_paced_worker
from chorus_client.keys import Keys
from chorus_client.protocol import AudioFrame, decode_frame
from gateway.subscriber import Subscriber
from shared.config import RedisSettings
from shared.connection import check_eviction, eviction_policy, sync_client
from shared.embedded import EmbeddedRedis
from shared.errors import ConfigError, RedisUnavailable, RequestFailed
from tests.helpers import keys_without_ttl, tiny_engine
from workers.worker import Worker, WorkerConfig

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_worker(url: str, *, chunks: int = 2, chunk_s: float = 0.02, name: str = "fw") -> Iterator[Worker]:
    """A real Worker serving ``url`` in a thread (a paced tone backend); stopped and joined at the end."""
    config = WorkerConfig(name=name, idle_wait_s=0.1, heartbeat_s=0.1, lease_s=2.0)
    worker = Worker(sync_client(RedisSettings.from_dsn(url)), paced_engine(chunks, chunk_s), config=config)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive(), "the worker stops when asked"


def heard(url: str, text: str = "你好", timeout_s: float = 20) -> int:
    """Enqueue and listen to the end; returns the segments heard."""
    r = sync_client(RedisSettings.from_dsn(url))
    res = Producer(r).enqueue(text, tenant="acme")
    frames = list(Subscriber(r).frames(res.request_id, timeout_s=timeout_s))
    return len({f.segment for f in frames if f.last})


@pytest.fixture()
def own_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(debug=True) as server:
        yield server


def test_out_of_memory_is_an_outage_for_workers_and_a_retryable_error_for_producers(
    own_server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    url = own_server.url
    r = sync_client(RedisSettings.from_dsn(url))
    with running_worker(url) as worker:
        assert heard(url) == 1
        r.config_set("maxmemory", 1)  # below what it uses: with noeviction every write is refused (OOM)
        time.sleep(1.0)  # heartbeats and claims meet OOM meanwhile
        with pytest.raises(RedisUnavailable) as info:
            Producer(r).enqueue("你好", tenant="acme")
        assert info.value.code == "OOM" and "maxmemory" in str(info.value)
        assert main(["enqueue", "--redis", url, "--tenant", "acme", "你好"]) == 75
        assert "maxmemory" in capsys.readouterr().err
        r.config_set("maxmemory", 0)
        served = worker.served
        assert heard(url) == 1, "the same worker serves on once memory is back"
        assert worker.served > served and worker.errors == 0
    assert keys_without_ttl(r) == []


def test_a_worker_pointed_at_a_replica_backs_off_until_it_is_a_primary_again(own_server: EmbeddedRedis) -> None:
    url = own_server.url
    r = sync_client(RedisSettings.from_dsn(url))
    with EmbeddedRedis() as primary, running_worker(url) as worker:
        assert heard(url) == 1
        r.config_set("masterauth", RedisSettings.from_dsn(primary.url).password or "")
        r.replicaof("127.0.0.1", primary.port)  # a failover made this one a replica: writes answer READONLY
        deadline = time.monotonic() + 10
        while r.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)
        with pytest.raises(RedisUnavailable) as info:
            Producer(r).enqueue("你好", tenant="acme")
        assert info.value.code == "READONLY"
        time.sleep(0.5)
        r.replicaof("NO", "ONE")
        assert heard(url) == 1, "the same worker serves once it is a primary again"
        assert worker.errors == 0 and worker.outages >= 1
    assert keys_without_ttl(r) == []


def test_a_long_script_blocking_the_server_is_an_outage(own_server: EmbeddedRedis) -> None:
    url = own_server.url
    r = sync_client(RedisSettings.from_dsn(url))
    r.config_set("lua-time-limit", 100)  # busy-reply-threshold on 7.x: others get BUSY after 100 ms
    busy_loop = (
        "local t0 = redis.call('TIME') while true do local t = redis.call('TIME') "
        "if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 1500000 then break end end return 1"
    )
    with running_worker(url) as worker:
        assert heard(url) == 1
        blocker = threading.Thread(target=lambda: sync_client(RedisSettings.from_dsn(url)).eval(busy_loop, 0))
        blocker.start()
        time.sleep(0.3)
        with pytest.raises(RedisUnavailable) as info:
            Producer(r).enqueue("你好", tenant="acme")
        assert info.value.code == "BUSY"
        blocker.join(10)
        assert heard(url) == 1 and worker.errors == 0
    assert keys_without_ttl(r) == []


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru"])
def test_a_server_that_may_evict_is_refused_unless_allowed(
    redis_url: str, r: redis.Redis, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    r.config_set("maxmemory-policy", policy)
    try:
        with pytest.raises(ConfigError, match="noeviction"):
            check_eviction(r)
        assert check_eviction(r, allow=True) == policy
        assert main(["worker", "--redis", redis_url]) == 1
        assert main(["gateway", "--redis", redis_url, "--port", "1"]) == 1
        err = capsys.readouterr().err
        assert err.count("maxmemory-policy " + policy) == 2 and "--allow-eviction" in err
        # an ACL user without CONFIG still gets an answer (from INFO)
        r.execute_command("ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "&*", "+@all", "-config")
        limited = sync_client(
            RedisSettings.from_dsn(f"redis://noconfig:pw@127.0.0.1:{r.connection_pool.connection_kwargs['port']}/0")
        )
        assert eviction_policy(limited) == policy
    finally:
        r.config_set("maxmemory-policy", "noeviction")
        r.execute_command("ACL", "DELUSER", "noconfig")


def test_flushall_mid_request_ends_the_stream_as_lost_promptly(redis_url: str, r: redis.Redis) -> None:
    with running_worker(redis_url, chunks=20, chunk_s=0.05) as worker:
        res = Producer(r).enqueue(["你好", "世界"], tenant="acme")
        outcome: list[BaseException | float] = []

        def listen() -> None:
            try:
                list(Subscriber(sync_client(RedisSettings.from_dsn(redis_url))).frames(res.request_id, timeout_s=30))
            except RequestFailed as exc:
                outcome.append(exc)
            outcome.append(time.monotonic())

        listener = threading.Thread(target=listen)
        listener.start()
        audio = Keys().audio(res.request_id)
        deadline = time.monotonic() + 10
        while r.xlen(audio) < 2:  # the header and a first frame: the listener is mid-stream
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r.flushall()
        flushed = time.monotonic()
        listener.join(30)
        assert isinstance(outcome[0], RequestFailed) and outcome[0].code == "request_lost"
        assert isinstance(outcome[1], float) and outcome[1] - flushed < 5, "told promptly, not at the timeout"
        assert heard(redis_url) == 1, "the same worker serves the next request"
        assert worker.errors == 0
    assert keys_without_ttl(r) == []


def test_urls_are_parsed_by_redis_py_percent_encoding_query_options_and_unix(r: redis.Redis) -> None:
    password = "p@ss:w/rd%?#"
    r.execute_command("ACL", "SETUSER", "chorus-user", "on", f">{password}", "~*", "&*", "+@all")
    port = r.connection_pool.connection_kwargs["port"]
    try:
        url = f"redis://chorus-user:{quote(password, safe='')}@127.0.0.1:{port}/0?socket_timeout=7"
        settings = RedisSettings.from_dsn(url)
        client = sync_client(settings)
        assert client.ping() and settings.password == password
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 7.0, "query options win"
        assert password not in repr(settings) and quote(password, safe="") not in settings.safe_url()
        assert Producer(client).enqueue("你好", tenant="acme").segments == 1
    finally:
        r.execute_command("ACL", "DELUSER", "chorus-user")
    unix = RedisSettings.from_dsn("unix:///run/redis/redis.sock?db=2")
    assert unix.db == 2 and unix.host == "/run/redis/redis.sock"
    with pytest.raises(ConfigError, match="redis://"):
        RedisSettings.from_dsn("http://example.org")


def test_a_wrong_password_is_a_clear_error_not_a_traceback(r: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    port = r.connection_pool.connection_kwargs["port"]
    bad = f"redis://:wrong@127.0.0.1:{port}/0"
    assert main(["stats", "--redis", bad]) == 1
    assert main(["enqueue", "--redis", bad, "--tenant", "acme", "你好"]) == 1
    err = capsys.readouterr().err
    assert err.count("refused the credentials") == 2 and "Traceback" not in err and "wrong" not in err


def test_an_enqueue_retried_after_a_stalled_server_runs_once(redis_url: str, r: redis.Redis) -> None:
    """The server stalls past the client's socket timeout while the enqueue is in flight: the
    producer retries, the script is idempotent by id, so the request is queued once and answered."""
    settings = RedisSettings(dsn=redis_url, socket_timeout_s=0.25)
    stall = threading.Thread(target=lambda: r.execute_command("DEBUG", "SLEEP", "0.5"))
    stall.start()
    time.sleep(0.05)
    res = Producer(sync_client(settings)).enqueue(["你好", "世界", "再见"], tenant="acme")
    stall.join()
    keys = Keys()
    assert res.segments == 3
    assert int(r.hget(keys.depth(), "acme") or 0) == 3, "queued once"
    assert sum(r.xlen(keys.queue("acme", lane)) for lane in ("rt", "interactive", "batch")) == 3
    frames = [decode_frame(f[b"f"]) for _, f in r.xrange(keys.audio(res.request_id))]
    assert frames and r.ttl(keys.audio(res.request_id)) > 0, "the header is there, with its expiry"


@pytest.mark.slow
def test_a_worker_with_a_clock_a_minute_ahead_takes_nothing_from_healthy_workers(
    redis_url: str, r: redis.Redis
) -> None:
    libs = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1")) + sorted(
        Path("/usr/lib").glob("faketime/libfaketime.so.1")
    )
    assert libs and shutil.which("faketime"), (
        "Debian's faketime is needed (bin/test installs it: apt-get install faketime)"
    )
    ctx = mp.get_context("spawn")
    healthy = [ctx.Process(target=run_paced_worker, args=(redis_url, f"ok{i}", 4, 0.1, 1.0)) for i in range(2)]
    code = f"from chorus.testing import run_paced_worker; run_paced_worker({redis_url!r}, 'ahead', 4, 0.1, 1.0)"
    # libfaketime preloaded into this one process (the faketime wrapper would fork and outlive terminate())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LD_PRELOAD": str(libs[0]), "FAKETIME": "+60s"}
    ahead = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    for p in healthy:
        p.start()
    try:
        deadline = time.monotonic() + 30
        while r.zcard(Keys().workers()) < 3:
            assert time.monotonic() < deadline, "workers did not start"
            assert ahead.poll() is None, "the worker under faketime exited"
            time.sleep(0.1)
        rids = [Producer(r).enqueue(["你好", "世界"], tenant=f"t{i % 3}").request_id for i in range(9)]
        frames: list[AudioFrame] = []
        for rid in rids:
            frames += list(Subscriber(r).frames(rid, timeout_s=60))
        assert {f.attempt for f in frames} == {1}, "no segment was taken over and synthesised again"
        assert r.xlen(Keys().dead()) == 0
        info = {k.decode(): v for k, v in r.hgetall(Keys().worker_info()).items()}
        assert "ahead" in info, "the skewed worker took part"
        probe = [sys.executable, "-c", "import time; print(time.time())"]
        skew = float(subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout) - time.time()
        assert 55 < skew < 65, f"the clock really is ahead ({skew:.1f} s)"
    finally:
        ahead.terminate()
        ahead.wait(10)
        for p in healthy:
            p.terminate()
            p.join(10)


def test_a_thousand_one_off_tenants_are_drained_to_nothing(r: redis.Redis, keys: Keys) -> None:
    producer = Producer(r)
    for i in range(1000):
        producer.enqueue("你好", tenant=f"once{i}")
    worker = Worker(r, tiny_engine(), config=WorkerConfig(name="w1", claim_count=8, idle_tenant_s=0.3))
    while worker.run_once():
        pass
    time.sleep(0.6)
    found, forgotten = Claimer(r, keys).sweep(idle_ms=300)
    assert (found, forgotten) == (0, 1000)
    assert list(r.scan_iter(match=f"{keys.queue_prefix()}*", count=1000)) == []
    assert not [f for f in r.hkeys(keys.drr()) if not f.startswith(b"~")], "no scheduler state per tenant"
    assert r.hlen(keys.served()) == 0 and r.hlen(keys.depth()) == 0
    assert r.xlen(keys.history()) == 1000, "their totals roll up into the capped history"
    buckets = list(r.scan_iter(match=keys.busy(0).rsplit(":", 1)[0] + ":*"))
    assert buckets and all(0 < r.ttl(b) <= 130 for b in buckets), "last-minute figures expire by themselves"
    assert keys_without_ttl(r) == []
    again = producer.enqueue("你好", tenant="once7")  # a forgotten tenant comes back as a new one
    while worker.run_once():
        pass
    assert r.hget(keys.request(again.request_id), "status") == b"done"


def test_the_acl_users_of_docs_operations_are_enough_for_each_role(redis_url: str, r: redis.Redis) -> None:
    """The ACL lines operators copy from docs/OPERATIONS.md: a worker, a producer and a listener run with them."""
    lines = [ln for ln in (ROOT / "docs" / "OPERATIONS.md").read_text().splitlines() if ln.startswith("user chorus-")]
    assert len(lines) == 3
    port = r.connection_pool.connection_kwargs["port"]
    users = {}
    try:
        for line in lines:
            _, name, *rules = line.replace(">PASSWORD", ">secret").split()
            r.execute_command("ACL", "SETUSER", name, "reset", *rules)
            users[name] = f"redis://{name}:secret@127.0.0.1:{port}/0"
        assert check_eviction(sync_client(RedisSettings.from_dsn(users["chorus-worker"]))) == "noeviction"
        with running_worker(users["chorus-worker"]) as worker:
            producer = sync_client(RedisSettings.from_dsn(users["chorus-producer"]))
            res = Producer(producer).enqueue("你好", tenant="acme")
            assert len(list(Subscriber(producer).frames(res.request_id, timeout_s=20))) > 0
            assert worker.errors == 0 and worker.outages == 0, "no command of the worker was refused"
        with pytest.raises(redis.exceptions.NoPermissionError):
            sync_client(RedisSettings.from_dsn(users["chorus-producer"])).flushall()
    finally:
        for name in users:
            r.execute_command("ACL", "DELUSER", name)
