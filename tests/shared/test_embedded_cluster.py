"""EmbeddedCluster: a real Redis Cluster of child processes (3 masters, 3 replicas), no mocks.

What redis-py's cluster clients do with it is pinned here too: they find every master from
one URL, follow MOVED, and after a master's kill -9 they reach the promoted replica. Redis 7
does not replicate SCRIPT LOAD, so EVALSHA on a promoted replica answers NOSCRIPT (6.2 did
replicate it); redis-py's ``Script`` objects reload and carry on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import MovedError, NoScriptError
from redis.retry import Retry

from shared.embedded import ClusterNode, EmbeddedCluster
from shared.errors import RedisUnavailable

LUA_GET = "return redis.call('GET', KEYS[1])"


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    """One cluster for the tests that do not break it."""
    with EmbeddedCluster() as c:
        yield c


def _gone(pid: int | None) -> bool:
    assert pid is not None, "the node was started"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _password(cluster: EmbeddedCluster) -> str:
    password = urlsplit(cluster.urls[0]).password
    assert password, "the URLs carry the password"
    return password


def _key_on(cluster: EmbeddedCluster, master: ClusterNode) -> str:
    """A key with a ``{sN}`` hash tag whose slot ``master`` serves."""
    for i in range(1000):
        key = f"{{s{i}}}:k"
        if cluster.master_of(key_slot(key.encode())) is master:
            return key
    raise AssertionError(f"no {{sN}} tag lands on {master!r}")


def _info(node: ClusterNode) -> dict[str, str]:
    with node.client() as c:
        text = str(c.execute_command("CLUSTER", "INFO"))
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@pytest.mark.slow
def test_the_cluster_comes_up(cluster: EmbeddedCluster) -> None:
    assert len(cluster.nodes) == 6
    for node in cluster.nodes:
        info = _info(node)
        assert info["cluster_state"] == "ok", node
        assert info["cluster_slots_assigned"] == info["cluster_slots_ok"] == "16384", node
        assert info["cluster_known_nodes"] == "6", node
        assert info["cluster_size"] == "3", node
    masters, replicas = cluster.masters(), cluster.replicas()
    assert len(masters) == 3 and len(replicas) == 3
    assert {n.role for n in cluster.nodes} == {"master", "replica"}
    followed = []
    for replica in replicas:
        with replica.client() as c:
            repl = c.info("replication")
        assert repl["master_link_status"] == "up"
        followed.append(repl["master_port"])
    assert sorted(followed) == sorted(m.port for m in masters), "each master has exactly one replica"
    for master in masters:
        with master.client() as c:
            assert c.info("replication")["connected_slaves"] == 1
    assert len({n.port for n in cluster.nodes} | {n.bus_port for n in cluster.nodes}) == 12
    assert len({n.pid for n in cluster.nodes}) == 6
    assert urlsplit(cluster.url).port in {m.port for m in masters}


@pytest.mark.slow
def test_every_node_wants_the_password_and_none_shows_it(cluster: EmbeddedCluster) -> None:
    password = _password(cluster)
    assert len(password) >= 24
    assert all(urlsplit(u).password == password for u in cluster.urls)
    for shown in (repr(cluster), cluster.safe_url, *(repr(n) for n in cluster.nodes)):
        assert password not in shown
    for node in cluster.nodes:
        # no retries: redis-py retries auth errors with backoff
        anonymous = redis.Redis(host="127.0.0.1", port=node.port, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
        try:
            with pytest.raises((redis.AuthenticationError, redis.ResponseError), match=r"(?i)auth"):
                anonymous.get("k")
        finally:
            anonymous.close()


@pytest.mark.slow
def test_the_cluster_client_reaches_every_master(cluster: EmbeddedCluster) -> None:
    keys = {master.index: _key_on(cluster, master) for master in cluster.masters()}
    client = redis.cluster.RedisCluster.from_url(cluster.url)
    try:
        for index, key in keys.items():
            assert client.set(key, f"on {index}")
        for index, key in keys.items():
            assert client.get(key) == f"on {index}".encode()
    finally:
        client.close()
    for index, key in keys.items():  # really on that master, and only servable there
        with cluster.nodes[index].client() as c:
            assert c.get(key) == f"on {index}"
        other = cluster.nodes[(index + 1) % 3]
        with other.client() as c, pytest.raises(MovedError):
            c.get(key)


@pytest.mark.slow
def test_the_asyncio_cluster_client_works(cluster: EmbeddedCluster) -> None:
    keys = [_key_on(cluster, master) for master in cluster.masters()]

    async def main() -> list[bytes | str | None]:
        client = redis.asyncio.cluster.RedisCluster.from_url(cluster.url)
        try:
            for key in keys:
                await client.set(key + ":async", key)
            return [await client.get(key + ":async") for key in keys]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [k.encode() for k in keys]


@pytest.mark.slow
def test_a_killed_master_is_replaced_by_its_replica_and_keeps_the_data() -> None:
    with EmbeddedCluster() as cluster:
        victim = cluster.nodes[0]
        its_replica = next(n for n in cluster.replicas() if n.index == 3)  # replicas follow masters in order
        key = _key_on(cluster, victim)
        client = redis.cluster.RedisCluster.from_url(cluster.url)
        try:
            sha = client.script_load(LUA_GET)
            script = client.register_script(LUA_GET)
            with victim.client() as direct:  # WAIT counts the replicas that have this connection's writes
                pipe = direct.pipeline(transaction=False)
                pipe.set(key, "before the kill")
                pipe.execute_command("WAIT", 1, 5000)
                assert pipe.execute() == [True, 1], "the replica has the write"
            assert client.evalsha(sha, 1, key) == b"before the kill"

            started = time.monotonic()
            cluster.kill(victim)
            assert not victim.running and victim.role == "down"
            new_master = cluster.failover_wait(victim, deadline_s=10)
            took = time.monotonic() - started
            assert new_master is its_replica
            assert took < 8, f"failover took {took:.1f} s"
            assert cluster.master_of(key_slot(key.encode())) is new_master
            assert urlsplit(cluster.url).port != victim.port, "url names a running master"

            # the client still maps the slot to the dead node: ConnectionError, refresh, retry
            assert client.get(key) == b"before the kill"
            assert client.set(key, "after the failover")
            if cluster.version >= 7:  # SCRIPT LOAD is not replicated: the promoted replica lacks it
                with pytest.raises(NoScriptError):
                    client.evalsha(sha, 1, key)
            else:
                assert client.evalsha(sha, 1, key) == b"after the failover"
            assert script(keys=[key]) == b"after the failover", "Script reloads on NOSCRIPT"

            cluster.restart(victim)  # rejoins as the new master's replica and resyncs
            assert victim.role == "replica"
            with victim.client() as c:
                assert c.info("replication")["master_port"] == new_master.port
                pipe = c.pipeline(transaction=False)
                pipe.execute_command("READONLY")
                pipe.get(key)
                assert pipe.execute() == [True, "after the failover"]
        finally:
            client.close()
        pids = [n.last_pid for n in cluster.nodes]
        dirs = [n.data_dir for n in cluster.nodes]
    assert all(_gone(pid) for pid in pids), "stop() leaves no redis-server behind"
    assert not any(d.exists() for d in dirs)


def test_a_start_that_fails_leaves_nothing_behind() -> None:
    cluster = EmbeddedCluster(loglevel="no-such-level")
    with pytest.raises(RedisUnavailable) as info:
        cluster.start()
    assert "exited at start" in str(info.value)
    assert _password(cluster) not in str(info.value)
    assert all(_gone(n.last_pid) for n in cluster.nodes)
    assert not any(n.data_dir.exists() for n in cluster.nodes)


def test_a_start_that_times_out_midway_leaves_nothing_behind() -> None:
    cluster = EmbeddedCluster(start_timeout_s=0.3)  # the nodes come up; the cluster needs ~2 s
    with pytest.raises(RedisUnavailable, match=r"did not answer|timed out waiting") as info:
        cluster.start()
    assert _password(cluster) not in str(info.value)
    assert len(cluster.nodes) == 6
    assert all(_gone(n.last_pid) for n in cluster.nodes)
    assert not any(n.data_dir.exists() for n in cluster.nodes)
    cluster.stop()  # twice is harmless
