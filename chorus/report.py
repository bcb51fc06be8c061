"""Plain-text tables for the ``chorus tenants`` and ``chorus stats`` commands."""

from __future__ import annotations

from broker.policy import DefaultPolicy, TenantPolicy
from broker.stats import TenantStats

__all__ = ["policy_table", "stats_table"]


def _cap(n: int) -> str:
    return "-" if n == 0 else str(n)


def _policy_row(name: str, p: TenantPolicy) -> str:
    where = f"  (shard {p.shard})" if p.shard else ""
    return f"{name:24} {p.weight:>6} {_cap(p.max_queued):>10} {_cap(p.max_inflight):>9}  {','.join(p.lanes)}{where}"


def policy_table(policies: dict[str, TenantPolicy], default: DefaultPolicy) -> str:
    lines = [f"{'tenant':24} {'weight':>6} {'max-queued':>10} {'max-infl.':>9}  lanes"]
    lines += [_policy_row(name, p) for name, p in policies.items()]
    label = "* (default: rejects)" if default.reject else "* (default)"
    lines.append(_policy_row(label, default.policy))
    return "\n".join(lines)


def stats_table(stats: list[TenantStats]) -> str:
    """One line per tenant and lane with any activity, then the tenant's total."""
    head = (
        f"{'tenant':20} {'lane':11} {'weight':>6} {'queued':>8} {'in-flight':>9} "
        f"{'served':>9} {'work s':>9} {'1-min s':>8} {'share':>6}"
    )
    lines = [head]
    for t in stats:
        for lane, s in t.lanes.items():
            if not (s.queued or s.inflight or s.served or s.recent):
                continue
            lines.append(
                f"{t.tenant:20} {lane:11} {t.policy.weight:>6} {s.queued:>8} {s.inflight:>9} "
                f"{s.served:>9} {s.served_s:>9.1f} {s.recent_s:>8.1f}"
            )
        state = " parked" if t.parked else ""
        lines.append(
            f"{t.tenant:20} {'(all)' + state:11} {t.policy.weight:>6} {t.queued:>8} {t.inflight:>9} "
            f"{sum(s.served for s in t.lanes.values()):>9} {sum(s.served_s for s in t.lanes.values()):>9.1f} "
            f"{t.recent_s:>8.1f} {t.share:>6.1%}"
        )
    if len(lines) == 1:
        lines.append("(no tenant has queued, in-flight or recent work)")
    return "\n".join(lines)
