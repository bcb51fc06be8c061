"""The Node.js client's own suite (clients/node, ``node --test``), run by pytest.

It installs the client's dependencies from its lockfile (``npm ci``) when
``node_modules`` is missing or older than ``package-lock.json``, then runs
``npm test`` with this interpreter as the chorus Python (the worker and the
interoperability checks) and the redis-server binary the rest of the suite uses.
Node.js (>= 18) and npm must be installed: ``bin/test`` provides them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.embedded import find_redis_server

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "clients" / "node"
INSTALL_TIMEOUT_S = 600
TEST_TIMEOUT_S = 600


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the Node.js client's tests need Node.js >= 18 and npm "
            "(bin/test installs them; on Debian: apt-get install nodejs npm)"
        )
    return path


def _needs_install() -> bool:
    installed = NODE_CLIENT / "node_modules" / ".package-lock.json"
    lockfile = NODE_CLIENT / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime


def _run(args: list[str], env: dict[str, str], timeout_s: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=NODE_CLIENT, env=env, capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.timeout(INSTALL_TIMEOUT_S + TEST_TIMEOUT_S)
def test_node_client_suite() -> None:
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = int(version.lstrip("v").split(".")[0] or 0)
    assert major >= 18, f"the Node.js client needs Node.js >= 18, found {version}"
    env = {**os.environ, "CHORUS_PYTHON": sys.executable, "CHORUS_REDIS_SERVER": find_redis_server()}
    if _needs_install():
        res = _run([npm, "ci", "--no-audit", "--no-fund"], env, INSTALL_TIMEOUT_S)
        assert res.returncode == 0, f"npm ci failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}"
    res = _run([npm, "test"], env, TEST_TIMEOUT_S)
    assert res.returncode == 0, f"npm test failed (exit {res.returncode}):\n{res.stdout[-20000:]}\n{res.stderr[-5000:]}"
