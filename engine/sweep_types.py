"""What a sweep produces: the result record and the metrics reported per point.

Below both :mod:`engine.sweep_run` (which fills a :class:`SweepResult`) and
:mod:`engine.sweep_report` (which writes it out), so neither imports the other's consumer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.sweep import SweepConfig

POINT_METRICS = ("sharpe_ratio", "cagr", "max_drawdown", "turnover", "annualized_volatility",
                 "sortino_ratio", "calmar_ratio", "excess_return", "hit_rate")  # fmt: skip


@dataclass
class SweepResult:
    sweep: SweepConfig
    sweep_id: str
    points: list[dict[str, Any]]
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    selected: dict[str, Any] | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0

    def table(self) -> pd.DataFrame:
        rows = []
        for p in self.points:
            row = {"point": p["label"], "period": p["period"], **p.get("changes", {})}
            row.update({k: p["metrics"].get(k) for k in POINT_METRICS})
            rows.append(row)
        return pd.DataFrame(rows)
