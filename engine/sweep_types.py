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

#: Metrics shown as percentages (the others are ratios), as in the backtest's summary.
PERCENT_METRICS = frozenset({"cagr", "max_drawdown", "turnover", "annualized_volatility",
                             "excess_return", "hit_rate"})  # fmt: skip


def format_metric(name: str, value: Any) -> str:
    """``12.34%`` for a percentage metric, ``1.23`` for a ratio, ``n/a`` when missing."""
    if value is None or value != value:
        return "n/a"
    return f"{value * 100:.2f}%" if name in PERCENT_METRICS else f"{value:.2f}"


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
    #: period -> the benchmark's closes on the points' days ({"symbol", "dates", "values"})
    benchmark: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Sharpe intervals, deflated Sharpe and PBO (:func:`engine.sweep_stats.grid_statistics`)
    statistics: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        rows = []
        for p in self.points:
            row = {"point": p["label"], "period": p["period"], **p.get("changes", {})}
            row.update({k: p["metrics"].get(k) for k in POINT_METRICS})
            ci = self.statistics.get("intervals", {}).get(p.get("key"), (None, None))
            row["sharpe_ci_low"], row["sharpe_ci_high"] = ci
            rows.append(row)
        return pd.DataFrame(rows)
