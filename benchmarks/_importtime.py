"""Where a handler's extra cold start goes: one `-X importtime` run, restricted to modules the floor does not import."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


@dataclass(frozen=True)
class ImportCost:
    module: str
    self_ms: float
    cumulative_ms: float


def parse(stderr: str) -> list[ImportCost]:
    """The rows of `python -X importtime` output."""
    return [
        ImportCost(module=m[3], self_ms=int(m[1]) / 1000, cumulative_ms=int(m[2]) / 1000)
        for m in (_LINE.match(line) for line in stderr.splitlines())
        if m
    ]


def summarise(costs: list[ImportCost], beyond: set[str], top: int = 6) -> list[str]:
    """Self time of the imports in `beyond`, per top-level package, then the heaviest modules."""
    extra = [c for c in costs if c.module in beyond]
    per_package: dict[str, float] = defaultdict(float)
    for cost in extra:
        per_package[cost.module.split(".")[0]] += cost.self_ms
    packages = sorted(per_package.items(), key=lambda kv: -kv[1])[:top]
    heaviest = sorted(extra, key=lambda c: -c.self_ms)[:top]
    total = sum(c.self_ms for c in extra)
    return [
        f"{total:.0f} ms self time in {len(extra)} imports beyond the floor; by package: "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in packages),
        "heaviest: " + ", ".join(f"{c.module} {c.self_ms:.1f} ms (cum. {c.cumulative_ms:.0f})" for c in heaviest),
    ]
