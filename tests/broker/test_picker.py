"""The fair order over shards: shares by shard weight, wake-ups, probes of idle shards."""

from __future__ import annotations

from collections import Counter

from broker.picker import PROBE_EVERY_S, ShardPicker, probe_interval


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def serve(picker: ShardPicker, weights: dict[str, int], rounds: int, cost: float = 1000.0) -> Counter[str]:
    """Every shard always has work: the picker's first choice is served each round."""
    got: Counter[str] = Counter()
    for _ in range(rounds):
        shard = picker.order()[0]
        picker.found(shard, weights[shard])
        picker.served(shard, cost)
        got[shard] += 1
    return got


def test_busy_shards_share_by_their_weights() -> None:
    picker = ShardPicker(["s0", "s1", "s2"], clock=Clock())
    got = serve(picker, {"s0": 3, "s1": 2, "s2": 1}, 6000)
    assert abs(got["s0"] / 6000 - 3 / 6) < 0.01
    assert abs(got["s1"] / 6000 - 2 / 6) < 0.01
    assert abs(got["s2"] / 6000 - 1 / 6) < 0.01


def test_a_lone_tenant_gets_what_each_crowded_tenant_gets() -> None:
    """Shard s0 holds one tenant of weight 1, s1 three of weight 1: s0 gets a quarter, not a half."""
    picker = ShardPicker(["s0", "s1"], clock=Clock())
    got = serve(picker, {"s0": 1, "s1": 3}, 4000)
    assert abs(got["s0"] / 4000 - 0.25) < 0.01


def test_costs_not_counts_are_shared() -> None:
    picker = ShardPicker(["s0", "s1"], clock=Clock())
    time: Counter[str] = Counter()
    for _ in range(3000):
        shard = picker.order()[0]
        picker.found(shard, 1)
        cost = 3000.0 if shard == "s0" else 1000.0  # s0's segments are three times as long
        picker.served(shard, cost)
        time[shard] += cost
    assert abs(time["s0"] / (time["s0"] + time["s1"]) - 0.5) < 0.01


def test_a_shard_back_from_idle_earns_no_credit_and_waits_no_round() -> None:
    clock = Clock()
    picker = ShardPicker(["s0", "s1"], clock=clock)
    picker.empty("s1")
    serve(picker, {"s0": 1, "s1": 1}, 1000)  # s1 idle all along
    picker.woken({"s1"})
    got = serve(picker, {"s0": 1, "s1": 1}, 100)
    assert 48 <= got["s1"] <= 52  # half from now on: no burst for its idle time, no wait either


def test_an_empty_shard_is_skipped_until_woken_or_probed() -> None:
    clock = Clock()
    picker = ShardPicker(["s0", "s1", "s2"], clock=clock)
    picker.probe_s = 0.5
    picker.order()
    picker.empty("s1")
    picker.empty("s2")
    assert picker.order() == ["s0"]
    picker.woken({"s2"})
    assert set(picker.order()) == {"s0", "s2"}
    clock.t += 0.6  # s1 is due for a probe: tried first
    assert picker.order()[0] == "s1"
    assert "s1" not in picker.order()  # probed just now: not again before probe_s


def test_with_no_shard_busy_every_shard_is_tried() -> None:
    picker = ShardPicker(["s0", "s1", "s2"], clock=Clock())
    for shard in ("s0", "s1", "s2"):
        picker.empty(shard)
    assert sorted(picker.order()) == ["s0", "s1", "s2"]
    picker.woken(None)  # a wait that timed out
    assert sorted(picker.order()) == ["s0", "s1", "s2"]


def test_new_shards_join_at_the_least_virtual_time() -> None:
    picker = ShardPicker(["s0"], clock=Clock())
    serve(picker, {"s0": 1}, 100)
    picker.set_shards(["s0", "s1"])
    got = serve(picker, {"s0": 1, "s1": 1}, 100)
    assert 48 <= got["s1"] <= 52


def test_the_deployment_probes_about_every_50_ms() -> None:
    assert probe_interval(1) == PROBE_EVERY_S
    assert probe_interval(10) == PROBE_EVERY_S * 10
    assert probe_interval(10_000) == 1.0


def test_one_probe_per_claim_the_longest_unprobed_first_and_none_right_after_a_wake_up() -> None:
    clock = Clock()
    picker = ShardPicker(["s0", "s1", "s2", "s3"], clock=clock)
    picker.probe_s = 0.5
    for shard in ("s1", "s2", "s3"):
        picker.empty(shard)
        clock.t += 0.01
    clock.t += 1.0  # all three are due
    assert picker.order() == ["s1", "s0"]
    assert picker.order() == ["s2", "s0"]
    picker.woken({"s3"})
    assert set(picker.order()) == {"s0", "s3"}  # the wake-up said where the work is: no probe
    assert "s1" not in picker.order() and "s2" not in picker.order()  # probed just now
    clock.t += 0.6
    assert picker.order()[0] == "s1"  # probed longest ago
