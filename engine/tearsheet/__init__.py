"""The tear sheet of a backtest: statistics (empyrical-reloaded, :mod:`.stats`), plotly figures
(:mod:`.figures`) and human labels and warnings (:mod:`.labels`), assembled into the report's
sections by :func:`build_sections`. :mod:`engine.report` renders them into report.html.

Every section always has the same charts (ids in :data:`CHART_IDS`); a chart without data says
why instead of disappearing, so the page's layout and the browser tests do not depend on the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from engine.metrics import align_benchmark
from engine.tearsheet import figures as fg
from engine.tearsheet import stats as st


@dataclass(frozen=True)
class Table:
    """A small HTML table: caption, header and rows of already formatted strings."""

    caption: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]


@dataclass
class Section:
    heading: str
    note: str
    charts: list[tuple[str, str, go.Figure]] = field(default_factory=list)  # id, title, figure
    tables: list[Table] = field(default_factory=list)


#: Every chart of the tear sheet, in page order.
CHART_IDS = (
    "chart-equity", "chart-excess", "chart-drawdown", "chart-monthly", "chart-yearly",
    "chart-histogram", "chart-rolling", "chart-exposure", "chart-weights", "chart-holdings",
    "chart-turnover", "chart-costs", "chart-pnl-symbol", "chart-pnl-sector",
    "chart-holding-periods",
)  # fmt: skip

#: Rows of the trade list in the report (largest P&L first); round_trips.csv has them all.
TRADE_ROWS = 20


def _day(value) -> str:
    return "" if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value * 100:,.2f} %"


def drawdown_table(equity: pd.Series) -> Table:
    table = st.drawdown_periods(equity)
    rows = [
        (_day(r.peak), _day(r.trough), _day(r.recovery) or "not recovered", _pct(r.depth),
         f"{r.days:,}")
        for r in table.itertuples(index=False)
    ]  # fmt: skip
    columns = ("peak", "trough", "recovered", "depth", "trading days")
    return Table(f"The {st.WORST_DRAWDOWNS} deepest drawdowns", columns, rows)


def trade_table(trips: pd.DataFrame) -> Table:
    if trips.empty:
        return Table("Round trips: none closed", (), [])
    won = float((trips["pnl"] > 0).mean())
    caption = (
        f"Round trips (first in, first out): {len(trips):,} closed, {won:.0%} with a profit, "
        f"median holding {trips['holding_days'].median():,.0f} days; the {TRADE_ROWS} largest "
        "by |P&L| (all in round_trips.csv)"
    )
    largest = trips.loc[trips["pnl"].abs().sort_values(ascending=False).index[:TRADE_ROWS]]
    rows = [
        (str(t.symbol), _day(t.entry_date), _day(t.exit_date), f"{t.holding_days:,}",
         f"{t.quantity:,.4g}", _money(t.entry_price), _money(t.exit_price), _money(t.pnl),
         _pct(t[8]))
        for t in largest.itertuples(index=False)
    ]  # fmt: skip
    columns = ("symbol", "bought", "sold", "days held", "quantity", "entry price", "exit price",
               "P&L", "return")  # fmt: skip
    return Table(caption, columns, rows)


def cost_table(equity: pd.Series, trades: pd.DataFrame, capital: float | None) -> Table:
    """Where the costs went and what they took: commission and slippage, against the starting
    capital, the traded value and the return before costs."""
    if equity.empty:
        return Table("Costs: no equity recorded", (), [])
    commission = float(trades["commission"].sum()) if "commission" in trades else 0.0
    slippage = float(trades["slippage"].sum()) if "slippage" in trades else 0.0
    total = commission + slippage
    traded = float(trades["value"].abs().sum()) if len(trades) else 0.0
    start = capital or float(equity.iloc[0])
    gross = st.gross_equity(equity, trades)
    rows = [
        ("Commission", _money(commission)),
        ("Slippage (price moved against the fills)", _money(slippage)),
        ("Total costs", _money(total)),
        ("Total costs / starting capital", _pct(total / start) if start else "n/a"),
        ("Costs per traded value", f"{total / traded * 1e4:,.1f} bps" if traded else "n/a"),
        ("Total return after costs", _pct(float(equity.iloc[-1]) / start - 1) if start else "n/a"),
        ("Total return before costs", _pct(float(gross.iloc[-1]) / start - 1) if start else "n/a"),
    ]
    return Table("Costs", ("", "value"), rows)


def sector_table(pnl: pd.Series, capital: float | None) -> Table:
    rows = [
        (str(name), _money(value), _pct(value / capital) if capital else "n/a")
        for name, value in pnl.items()
    ]
    columns = ("sector", "P&L", "contribution (P&L / starting capital)")
    return Table("P&L by sector", columns, rows)


def build_sections(
    *,
    equity: pd.Series,
    benchmark: pd.Series | None,
    weights: pd.DataFrame | None,
    trades: pd.DataFrame,
    cash: pd.Series | None = None,
    sectors: Mapping[str, str | None] | None = None,
    round_trips: pd.DataFrame | None = None,
    capital: float | None = None,
) -> list[Section]:
    """The tear sheet's sections for one run, in page order (charts named by :data:`CHART_IDS`).

    ``equity`` must be clean (sorted, no NaN); the benchmark is aligned onto its dates without
    look-ahead (:func:`engine.metrics.align_benchmark`). ``round_trips`` may be passed when the
    caller already matched them (:func:`.stats.round_trips`); ``capital`` (the starting cash)
    turns sector P&L into contributions to the return.
    """
    weights = weights if weights is not None else pd.DataFrame()
    bench = align_benchmark(benchmark, equity.index) if benchmark is not None else None
    returns = st.returns_of(equity)
    bench_returns = st.returns_of(bench) if bench is not None else None
    excess = None
    if bench_returns is not None and not bench_returns.dropna().empty:
        both = pd.concat([returns, bench_returns], axis=1, join="inner").dropna()
        excess = (1 + both.iloc[:, 0]).cumprod() / (1 + both.iloc[:, 1]).cumprod() - 1
    trips = st.round_trips(trades) if round_trips is None else round_trips
    pnl = st.pnl_by_symbol(trades, weights, equity)
    window = st.ROLLING_WINDOW
    bench_yearly = st.yearly_returns(bench_returns.dropna()) if bench_returns is not None else None
    held = weights.fillna(0.0)
    by_sector = st.pnl_by_sector(pnl, sectors or {})
    rolling = st.rolling_figures(returns, bench_returns)
    return [
        Section(
            "Performance",
            "Equity against the benchmark rebased to the same start, the cumulative return "
            "relative to the benchmark, and the fall from each running peak.",
            [
                ("chart-equity", "Equity and benchmark", fg.equity_figure(equity, bench)),
                ("chart-excess", "Cumulative return relative to the benchmark",
                 fg.excess_figure(excess)),
                ("chart-drawdown", "Drawdown", fg.drawdown_figure(equity)),
            ],
            [drawdown_table(equity)],
        ),
        Section(
            "Returns by period",
            "Compounded return of each calendar month and year (a partial first or last year "
            "covers only its days), and the spread of daily returns.",
            [
                ("chart-monthly", "Monthly returns",
                 fg.monthly_figure(st.monthly_returns(returns))),
                ("chart-yearly", "Yearly returns",
                 fg.yearly_figure(st.yearly_returns(returns), bench_yearly)),
                ("chart-histogram", "Distribution of daily returns",
                 fg.histogram_figure(returns, bench_returns)),
            ],
        ),
        Section(
            "Rolling risk",
            f"Sharpe ratio, annualised volatility and beta to the benchmark over the last "
            f"{window} trading days (about three months), each point using only earlier days.",
            [("chart-rolling", f"Rolling {window}-day figures",
              fg.rolling_figure(rolling, window))],
        ),
        Section(
            "Holdings and exposure",
            f"Invested and cash fractions of equity; a heatmap of the {fg.HEATMAP_SYMBOLS} largest "
            "holdings by average weight (one row per symbol, the rest summed in the last row); "
            f"and the weights of the {fg.TOP_HOLDINGS} largest stacked, the rest as a grey band.",
            [
                ("chart-exposure", "Invested and cash",
                 fg.exposure_figure(st.exposure_and_cash(weights, equity, cash))),
                ("chart-weights", f"Weights of the {fg.HEATMAP_SYMBOLS} largest holdings",
                 fg.weights_heatmap(st.top_weights(held, fg.HEATMAP_SYMBOLS))),
                ("chart-holdings", f"Stacked weights: the {fg.TOP_HOLDINGS} largest and the rest",
                 fg.holdings_figure(st.top_weights(held, fg.TOP_HOLDINGS))),
            ],
        ),
        Section(
            "Trading and costs",
            "Monthly one-way turnover (twelve months add up to the yearly figure), and equity "
            "with the costs paid so far added back against the run's equity: the gap is the "
            "cost drag.",
            [
                ("chart-turnover", "Monthly one-way turnover",
                 fg.turnover_figure(st.monthly_turnover(trades, equity))),
                ("chart-costs", "Cost drag: equity before and after costs",
                 fg.costs_figure(equity, st.gross_equity(equity, trades))),
            ],
            [cost_table(equity, trades, capital)],
        ),
        Section(
            "Attribution and trades",
            "Money made per symbol (sells - buys - commissions + value still held; these add up "
            "to the run's profit) and per sector, and the closed round trips matched first in, "
            "first out, with how long each was held.",
            [
                ("chart-pnl-symbol", f"P&L by symbol: the {fg.PNL_SYMBOLS} best and worst",
                 fg.pnl_figure(pnl, "symbol")),
                ("chart-pnl-sector", "P&L by sector", fg.pnl_figure(by_sector, "sector")),
                ("chart-holding-periods", "Holding periods of closed round trips",
                 fg.holding_period_figure(trips)),
            ],
            [sector_table(by_sector, capital), trade_table(trips)],
        ),
    ]  # fmt: skip


__all__ = [
    "CHART_IDS",
    "TRADE_ROWS",
    "Section",
    "Table",
    "build_sections",
    "cost_table",
    "drawdown_table",
    "sector_table",
    "trade_table",
]
