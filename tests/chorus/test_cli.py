"""The tenants and stats commands, in process, against a real redis-server."""

from __future__ import annotations

import json

import pytest
import redis

from broker.tenants import Tenants
from chorus.cli import EX_TEMPFAIL, main


def test_tenants_set_list_show_default_delete(
    redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--redis", redis_url]
    assert (
        main(["tenants", "set", "acme", "--weight", "3", "--max-queued", "2", "--lanes", "rt,interactive", *base]) == 0
    )
    policy = Tenants(r).get("acme")
    assert policy is not None and (policy.weight, policy.max_queued, policy.lanes) == (3, 2, ("rt", "interactive"))
    assert main(["tenants", "set", "acme", "--max-inflight", "4", *base]) == 0
    assert Tenants(r).get("acme") == policy.__class__(3, 2, 4, ("rt", "interactive")), "set keeps other fields"
    assert main(["tenants", "default", "--reject", *base]) == 0 and Tenants(r).default().reject
    capsys.readouterr()
    assert main(["tenants", "list", *base]) == 0
    out = capsys.readouterr().out
    assert "acme" in out and "default: rejects" in out
    assert main(["enqueue", "你好", "--tenant", "stranger", *base]) == 1
    assert "rejects unknown tenants" in capsys.readouterr().err
    assert main(["enqueue", "你好，世界！今天天气很好。", "--tenant", "acme", *base]) == 0
    assert main(["enqueue", "你好", "--tenant", "acme", *base]) == EX_TEMPFAIL
    assert "queue full for tenant 'acme'" in capsys.readouterr().err
    assert main(["tenants", "show", "acme", *base]) == 0
    assert "acme" in capsys.readouterr().out
    assert main(["tenants", "delete", "acme", *base]) == 0 and Tenants(r).get("acme") is None
    assert main(["tenants", "set", "acme", "--weight", "0", *base]) == 1
    assert "weight must be within" in capsys.readouterr().err


def test_stats_json(redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enqueue", "你好", "--tenant", "t1", "--priority", "batch", "--redis", redis_url]) == 0
    capsys.readouterr()
    assert main(["stats", "--json", "--redis", redis_url]) == 0
    (t1,) = json.loads(capsys.readouterr().out)
    assert t1["tenant"] == "t1" and t1["lanes"]["batch"]["queued"] == 1 and t1["policy"]["weight"] == 1
