"""The runtime packages and the benchmarks import without the test extras (``bin/check-imports``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "bin" / "check-imports"


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=300)


def test_every_module_imports_without_the_test_extras() -> None:
    res = _check()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "chorus.testing OK" in res.stdout and "bench.fairness OK" in res.stdout


def test_the_blocker_refuses_a_test_only_distribution(tmp_path: Path) -> None:
    pkg = tmp_path / "needs_tests"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text("import numpy\n")
    (pkg / "leaky.py").write_text("import pytest\n")  # importable here: pytest runs this test
    (pkg / "leaky_sub.py").write_text("from hypothesis import strategies\n")
    res = _check("--root", str(tmp_path), "needs_tests")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "needs_tests.fine OK" in res.stdout
    assert "needs_tests.leaky FAILED: ModuleNotFoundError: No module named 'pytest'" in res.stdout
    assert "needs_tests.leaky_sub FAILED: ModuleNotFoundError: No module named 'hypothesis'" in res.stdout
    assert "needs_tests.leaky:" in res.stderr
