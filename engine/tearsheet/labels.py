"""Human names, units and groups for the metrics, and the warnings a run's figures call for.

metrics.json keeps its snake_case keys (the web UI and sweeps read them); only the report shows
these labels. A key without an entry (a metric added later) is still shown, named from its key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Unit = Literal["percent", "ratio", "money", "count", "years", "number", "flag"]

#: Yearly one-way turnover above which the report warns: 10 = 1,000 % a year, the book replaced
#: ten times; costs and market impact then dominate, and the cost model is rarely that precise.
TURNOVER_WARNING = 10.0

#: Total costs (commission + slippage) above this fraction of the starting capital draw a warning:
#: at 5 % the result depends as much on the cost assumptions as on the strategy.
COSTS_WARNING = 0.05

#: name -> (label, unit, group). Groups keep the table's order: returns, risk, benchmark, trading.
METRIC_LABELS: dict[str, tuple[str, Unit, str]] = {
    "total_return": ("Total return", "percent", "Returns"),
    "cagr": ("Annual return (CAGR)", "percent", "Returns"),
    "hit_rate": ("Winning days (of days that moved)", "percent", "Returns"),
    "years": ("Length of the run", "years", "Returns"),
    "annualized_volatility": ("Annual volatility", "percent", "Risk"),
    "sharpe_ratio": ("Sharpe ratio (risk-free 0)", "ratio", "Risk"),
    "sortino_ratio": ("Sortino ratio", "ratio", "Risk"),
    "max_drawdown": ("Maximum drawdown", "percent", "Risk"),
    "calmar_ratio": ("Calmar ratio (CAGR / max drawdown)", "ratio", "Risk"),
    "benchmark_total_return": ("Benchmark total return", "percent", "Benchmark"),
    "benchmark_cagr": ("Benchmark annual return", "percent", "Benchmark"),
    "benchmark_sharpe": ("Benchmark Sharpe ratio", "ratio", "Benchmark"),
    "benchmark_max_drawdown": ("Benchmark maximum drawdown", "percent", "Benchmark"),
    "excess_return": ("Excess annual return (CAGR - benchmark)", "percent", "Benchmark"),
    "excess_total_return": ("Excess total return", "percent", "Benchmark"),
    "alpha": ("Alpha (annualised)", "percent", "Benchmark"),
    "beta": ("Beta", "ratio", "Benchmark"),
    "information_ratio": ("Information ratio", "ratio", "Benchmark"),
    "tracking_error": ("Tracking error (annualised)", "percent", "Benchmark"),
    "turnover": ("Turnover per year (one-way)", "percent", "Trading and costs"),
    "exposure": ("Average invested fraction", "percent", "Trading and costs"),
    "n_trades": ("Fills", "count", "Trading and costs"),
    "total_costs": ("Total costs (commission + slippage)", "money", "Trading and costs"),
    "costs_to_capital": ("Total costs / starting capital", "percent", "Trading and costs"),
    "n_capped_orders": ("Orders cut by the participation cap", "count", "Trading and costs"),
    "n_rebalances": ("Rebalances", "count", "Run"),
    "n_retrains": ("Model retrains", "count", "Run"),
    "n_model_load_errors": ("Models that failed to load", "count", "Run"),
    "dividends_received": ("Dividends received", "money", "Run"),
    "n_dividends_paid": ("Dividend payments", "count", "Run"),
    "n_splits_applied": ("Splits applied", "count", "Run"),
    "n_delisting_settlements": ("Holdings settled at delisting", "count", "Run"),
    "survivorship_biased": ("Universe of today's survivors (survivorship bias)", "flag", "Run"),
}

GROUPS = ("Returns", "Risk", "Benchmark", "Trading and costs", "Run", "Other")


def label_of(name: str) -> tuple[str, Unit, str]:
    """The label, unit and group of a metric; unknown keys are named from the key itself."""
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    unit: Unit = "count" if name.startswith("n_") else "number"
    return name.replace("_", " ").capitalize(), unit, "Other"


def format_value(value: Any, unit: Unit) -> str:
    """A value as the report shows it, with its unit; "n/a" when undefined (None, NaN, inf)."""
    if isinstance(value, bool):
        return ("yes" if value else "no") if unit == "flag" else str(value)
    if not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    number = float(value)
    if not math.isfinite(number):
        return "n/a"
    if unit == "percent":
        return f"{number * 100:,.2f} %"
    if unit == "money":
        return f"{number:,.2f}"
    if unit == "count":
        return f"{number:,.0f}"
    if unit == "years":
        return f"{number:,.2f} years"
    if unit == "ratio":
        return f"{number:,.2f}"
    return f"{number:,.3f}"


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The metrics table: (group, [(label, formatted value, key)]) in :data:`GROUPS` order.

    Mappings and lists (details such as model load errors) are left out: the warnings carry them.
    """
    groups: dict[str, list[tuple[str, str, str]]] = {g: [] for g in GROUPS}
    known = [k for k in METRIC_LABELS if k in metrics]
    rest = sorted(k for k in metrics if k not in METRIC_LABELS)
    for key in [*known, *rest]:
        value = metrics[key]
        if isinstance(value, Mapping | list | tuple):
            continue
        label, unit, group = label_of(key)
        groups[group].append((label, format_value(value, unit), key))
    return [(g, rows) for g, rows in groups.items() if rows]


def figure_warnings(metrics: Mapping[str, Any], capital: float | None) -> list[str]:
    """Warnings for extreme turnover (above :data:`TURNOVER_WARNING`) or costs (above
    :data:`COSTS_WARNING` of ``capital``)."""
    out = []
    turnover = metrics.get("turnover")
    if isinstance(turnover, int | float) and turnover > TURNOVER_WARNING:
        out.append(
            f"Turnover is {turnover:.0%} a year (above {TURNOVER_WARNING:.0%}): the book is "
            "replaced very often, so results depend heavily on the cost and fill assumptions"
        )
    costs = metrics.get("total_costs")
    share = costs / capital if isinstance(costs, int | float) and capital and capital > 0 else 0
    if share > COSTS_WARNING:
        out.append(
            f"Costs of {costs:,.2f} are {share:.1%} of the starting capital (above "
            f"{COSTS_WARNING:.0%}): see the cost-drag chart for what they took from the result"
        )
    return out


def merged_warnings(given: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``given`` then the ``extra`` warnings not already among them, in order, once each."""
    out: list[str] = []
    for text in [*given, *extra]:
        if text not in out:
            out.append(text)
    return out


__all__ = [
    "COSTS_WARNING",
    "GROUPS",
    "METRIC_LABELS",
    "TURNOVER_WARNING",
    "figure_warnings",
    "format_value",
    "label_of",
    "merged_warnings",
    "metric_rows",
]
