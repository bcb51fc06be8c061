"""Start chorus processes for benchmarks and tests, and wait until they serve, with a deadline.

The gateway runs as its own process (``python -m chorus gateway``), as in a
deployment; its stderr goes to a temporary file (a pipe nobody reads would stall
it once full) that :meth:`GatewayProcess.log_text` returns. Readiness is
``/readyz`` answering 200 with at least the wanted number of live workers; the
wait polls with the standard library only, so benchmarks need no test extras.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shared.errors import ChorusError

__all__ = ["GatewayProcess", "free_port", "start_gateway"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class GatewayProcess:
    """A running ``chorus gateway``; :meth:`stop` ends it (SIGTERM, then SIGKILL after ``timeout_s``)."""

    proc: subprocess.Popen[str]
    base: str
    """``http://127.0.0.1:<port>``."""
    log: IO[str] = field(repr=False)

    def log_text(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _ready(base: str, workers: int) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as resp:
            return resp.status == 200 and int(json.loads(resp.read()).get("workers", 0)) >= workers
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_gateway(
    redis_url: str,
    *args: str,
    env: dict[str, str] | None = None,
    workers: int = 1,
    deadline_s: float = 30.0,
    cwd: Path | None = None,
) -> GatewayProcess:
    """Start ``chorus gateway --port <free> *args`` on ``redis_url`` and wait until it serves with
    ``workers`` live workers; ChorusError (with the gateway's log) when it exits or the deadline passes."""
    port = free_port()
    full_env = {**os.environ, **(env or {}), "CHORUS_REDIS_URL": redis_url}
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chorus", "gateway", "--port", str(port), *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        cwd=cwd,
    )
    gateway = GatewayProcess(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + deadline_s
    while not _ready(gateway.base, workers):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready in {deadline_s:.0f} s"
            text = gateway.log_text()
            gateway.stop()
            raise ChorusError(f"the gateway {why} (wanted {workers} live workers): {text[-2000:]}")
        time.sleep(0.05)
    return gateway
