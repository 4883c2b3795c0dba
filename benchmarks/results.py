"""`.local/bench/results.json`: every figure `make bench` prints, with its target, in one file.

Each benchmark merges its figures in, so the file holds the latest value of every figure whichever benchmark
wrote it: `{"<figure>": {"value": ..., "target": ..., "unit": "...", "better": "lower" | "higher"}}`. A figure
without a target has `"target": null`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".local" / "bench" / "results.json"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | int | None
    unit: str
    target: float | int | None = None
    better: Literal["lower", "higher"] = "lower"

    def met(self) -> bool | None:
        """Whether the figure meets its target (None when it has none)."""
        if self.target is None:
            return None
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        return self.value <= self.target if self.better == "lower" else self.value >= self.target


def record(figures: list[Figure], path: Path = RESULTS) -> Path:
    """Merge `figures` into the results file (created if missing) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(current, dict):
            current = {}
    except (OSError, ValueError):
        current = {}
    for figure in figures:
        value = figure.value
        if isinstance(value, float) and math.isnan(value):
            value = None
        current[figure.name] = {"value": value, "target": figure.target, "unit": figure.unit, "better": figure.better}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
