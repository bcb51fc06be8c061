"""Property test: the Lua scheduler and the Python model in drr_model.py pick the same entries.

Hypothesis drives both with random enqueues (tenants, lanes, costs), claims,
completions with random measured times, and policy changes (weights, caps,
lanes), on a real redis-server; after every step the picks, refusals and the
whole scheduler state must agree.
"""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from broker.claim import Claimer
from broker.claimed import Claimed
from broker.policy import DefaultPolicy, TenantPolicy
from broker.producer import parse_refusal
from broker.scripts import ENQUEUE, script_source
from broker.tenants import Tenants
from chorus_client.keys import GROUP, LANES, Keys, new_request_id
from chorus_client.protocol import SegmentJob, decode_segment, encode_segment
from tests.broker.drr_model import Model, Pick

TENANTS = ["a", "b", "c", "d"]
segment = st.tuples(st.sampled_from(LANES), st.integers(min_value=0, max_value=80))
policy = st.builds(
    TenantPolicy,
    weight=st.integers(1, 5),
    max_queued=st.sampled_from([0, 3, 8, 40]),
    max_inflight=st.sampled_from([0, 1, 2, 4]),
    lanes=st.sampled_from([LANES, ("interactive", "batch"), ("batch",), ("rt", "interactive")]),
)


def _enqueue(
    r: redis.Redis, keys: Keys, script: object, tenant: str, segs: list[tuple[str, int]]
) -> tuple[str, str | None]:
    rid = new_request_id()
    args: list[object] = [tenant, rid, "jm_kumo", int(time.time() * 1000), 0, 3600, GROUP, len(segs)]
    for seq, (lane, chars) in enumerate(segs):
        job = SegmentJob(rid, seq, "你好", "jm_kumo", "zh", 1.0, 0, 0)
        args += [LANES.index(lane) + 1, chars, encode_segment(job)]
    key_list = keys.enqueue_keys(tenant, keys.request(rid))
    try:
        script(keys=key_list, args=args)  # type: ignore[operator]
    except redis.ResponseError as exc:
        refusal = parse_refusal(exc)
        assert refusal is not None, exc
        return rid, refusal.kind
    return rid, None


class SchedulerMachine(RuleBasedStateMachine):
    r: redis.Redis

    def __init__(self) -> None:
        super().__init__()
        self.r.flushall()
        self.keys = Keys()
        self.model = Model()
        self.claimer = Claimer(self.r, self.keys)
        self.tenants = Tenants(self.r, self.keys)
        self.enqueue_script = self.r.register_script(script_source(ENQUEUE))
        self.inflight: list[tuple[Claimed, Pick]] = []

    @initialize(reject=st.booleans())
    def default_policy(self, reject: bool) -> None:
        if reject:
            self.tenants.set_default(DefaultPolicy(reject=True))
            self.model.default = DefaultPolicy(reject=True)

    @rule(tenant=st.sampled_from(TENANTS), segs=st.lists(segment, min_size=1, max_size=12))
    def enqueue(self, tenant: str, segs: list[tuple[str, int]]) -> None:
        rid, refused = _enqueue(self.r, self.keys, self.enqueue_script, tenant, segs)
        expected = self.model.enqueue(tenant, [(lane, chars, f"{rid}:{i}") for i, (lane, chars) in enumerate(segs)])
        assert refused == expected

    @rule(want=st.integers(1, 6), workers=st.integers(1, 8), reserve=st.sampled_from([0, 0, 1, 2]))
    def claim(self, want: int, workers: int, reserve: int) -> None:
        got = self.claimer.claim("w", want, workers=workers, reserve=reserve)
        expected = self.model.claim(want, workers, reserve)
        seen = [(f"{c.request_id}:{decode_segment(c.payload or b'').seq}", c.tenant, c.lane, c.cost_us) for c in got]
        assert seen == [(p.tag, p.tenant, p.lane, p.cost) for p in expected]
        for c in got:
            assert c.stream == self.keys.queue(c.tenant, c.lane)
        self.inflight += list(zip(got, expected, strict=True))

    @precondition(lambda self: self.inflight)
    @rule(which=st.integers(0, 1000), actual=st.integers(1, 5_000_000))
    def complete(self, which: int, actual: int) -> None:
        item, pick = self.inflight.pop(which % len(self.inflight))
        now = int(time.time() * 1000)
        self.claimer.complete(item, item.request_id, ok=True, measured_us=actual, now_ms=now)
        self.model.complete(pick, actual, now)

    @rule(tenant=st.sampled_from(TENANTS), pol=policy)
    def set_policy(self, tenant: str, pol: TenantPolicy) -> None:
        self.tenants.set(tenant, pol)
        self.model.set_policy(tenant, pol)

    @invariant()
    def same_state(self) -> None:
        k, m = self.keys, self.model
        assert [t.decode() for t in self.r.lrange(k.fresh(), 0, -1)] == m.fresh
        assert [t.decode() for t in self.r.lrange(k.active(), 0, -1)] == m.ring
        assert {t.decode() for t in self.r.smembers(k.active_set())} == m.active
        drr = {name.decode(): float(v) for name, v in self.r.hgetall(k.drr()).items()}
        for t in TENANTS:
            assert drr.get(f"{t}:d", 0) == m.deficit.get(t, 0), t
            assert drr.get(f"{t}:f", 0) == m.inflight.get(t, 0), t
            assert (f"{t}:p" in drr) == (t in m.parked), t
        assert drr.get("~f", 0) == m.busy
        assert drr.get("~rate", m.rate) == m.rate
        assert drr.get("~q", m.quantum) == m.quantum


@pytest.mark.slow
def test_lua_scheduler_matches_python_model(r: redis.Redis) -> None:
    SchedulerMachine.r = r
    run_state_machine_as_test(
        SchedulerMachine,
        settings=settings(
            max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
