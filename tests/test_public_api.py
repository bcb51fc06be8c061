"""Each package's public surface is exactly what its __all__ names, and every name exists."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["shared", "broker", "workers", "gateway", "models"])
def test_all_names_exist_and_are_sorted(package: str) -> None:
    mod = importlib.import_module(package)
    names = mod.__all__
    assert names, f"{package} declares its public surface"
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing
    assert list(names) == sorted(names, key=lambda n: (not n.isupper(), n))
