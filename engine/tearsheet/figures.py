"""The tear sheet's plotly figures. Each takes prepared series/tables (see :mod:`.stats`) and
returns a figure; an empty input gives a figure that says so instead of a blank plot."""

from __future__ import annotations

import calendar
from functools import lru_cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

#: Stacked holdings chart: the symbols kept by average weight; the rest are one grey "other" band.
#: Ten, so each gets a colour of its own that the eye can still tell apart.
TOP_HOLDINGS = 10

#: Weights heatmap: symbols shown by average weight (one row each), the rest summed in one row.
HEATMAP_SYMBOLS = 30

#: Per-symbol P&L chart: the best and the worst this many symbols.
PNL_SYMBOLS = 10

#: Distinct colours for the holdings (ColorBrewer-like "Bold", its grey left for "other").
PALETTE = qualitative.Bold[:10]
OTHER_COLOR = "#b0b0b0"


#: The plotly template of every tear-sheet chart.
TEMPLATE = "plotly_white"


@lru_cache(maxsize=1)
def _validated_template() -> go.layout.Template:
    """:data:`TEMPLATE` as plotly's validation turns it into a layout's template (done once)."""
    return go.Figure(layout={"template": TEMPLATE}).layout.template


def set_template(fig: go.Figure) -> go.Figure:
    """``fig.update_layout(template=TEMPLATE)``, the same figure, without validating and copying
    the template's thousands of properties again for each chart (~10 ms a chart, most of its
    layout's cost): the validated copy is assigned with validation off, as plotly assigns its
    default template to every new figure (``BaseFigure._initialize_layout_template``).
    """
    lay = fig.layout
    lay._validate = False
    try:
        lay.template = _validated_template()
    finally:
        lay._validate = fig._validate
    return fig


def layout(fig: go.Figure, y_title: str, *, percent: bool = False, height: int = 380) -> go.Figure:
    set_template(fig).update_layout(
        height=height,
        margin={"l": 70, "r": 20, "t": 20, "b": 40},
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15},
        yaxis={"title": y_title, "tickformat": ".0%" if percent else ",.0f"},
    )
    return fig


def empty(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _line(series: pd.Series, name: str, **kw) -> go.Scatter:
    return go.Scatter(x=series.index, y=series.to_numpy(), name=name, mode="lines", **kw)


def equity_figure(equity: pd.Series, benchmark: pd.Series | None) -> go.Figure:
    """Equity against the benchmark rebased to the equity on the benchmark's first known day."""
    fig = go.Figure(_line(equity, "portfolio"))
    if benchmark is not None and benchmark.notna().any():
        start = benchmark.first_valid_index()
        if benchmark[start] != 0:
            fig.add_trace(_line(benchmark / benchmark[start] * equity[start], "benchmark"))
    return layout(fig, "value (money)")


def excess_figure(excess: pd.Series | None) -> go.Figure:
    """Cumulative return relative to the benchmark: (1 + portfolio) / (1 + benchmark) - 1."""
    if excess is None or excess.dropna().empty:
        return layout(empty(go.Figure(), "no benchmark to compare with"), "excess", percent=True)
    fig = go.Figure(_line(excess, "portfolio vs benchmark", fill="tozeroy"))
    return layout(fig, "cumulative excess return", percent=True)


def drawdown_figure(equity: pd.Series) -> go.Figure:
    drawdown = equity / equity.cummax() - 1.0
    fig = go.Figure(_line(drawdown, "drawdown", fill="tozeroy", line={"color": "#c0392b"}))
    return layout(fig, "below the running peak", percent=True)


def monthly_figure(table: pd.DataFrame) -> go.Figure:
    """Year x month heatmap of monthly returns, each cell labelled with its value."""
    if table.empty:
        return layout(empty(go.Figure(), "no returns recorded"), "year")
    values = table.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else f"{v:.1%}" for v in row] for row in values]
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.01
    fig = go.Figure(
        go.Heatmap(
            z=values, x=[calendar.month_abbr[m] for m in table.columns],
            y=[str(y) for y in table.index], text=text, texttemplate="%{text}",
            colorscale="RdYlGn", zmid=0.0, zmin=-limit, zmax=limit,
            colorbar={"title": "return", "tickformat": ".0%"},
            hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>",
        )
    )  # fmt: skip
    fig = layout(fig, "year", height=max(220, 60 + 32 * len(table)))
    fig.update_layout(hovermode="closest", yaxis={"autorange": "reversed", "tickformat": None})
    fig.update_yaxes(type="category")
    return fig


def yearly_figure(portfolio: pd.Series, benchmark: pd.Series | None) -> go.Figure:
    if portfolio.empty:
        return layout(empty(go.Figure(), "no returns recorded"), "return", percent=True)
    years = [str(y) for y in portfolio.index]
    fig = go.Figure(go.Bar(x=years, y=portfolio.to_numpy(), name="portfolio"))
    if benchmark is not None and not benchmark.empty:
        bench = benchmark.reindex(portfolio.index)
        fig.add_trace(go.Bar(x=years, y=bench.to_numpy(), name="benchmark"))
    fig = layout(fig, "return in the year", percent=True)
    fig.update_xaxes(type="category")
    return fig


def rolling_figure(rolling: pd.DataFrame, window: int) -> go.Figure:
    """Rolling Sharpe, volatility and beta in three stacked panels sharing the date axis."""
    if rolling.dropna(how="all").empty:
        text = f"fewer than {window} daily returns: no rolling window yet"
        return layout(empty(go.Figure(), text), "")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    panels = [("sharpe", "Sharpe", None), ("volatility", "volatility", ".0%"),
              ("beta", "beta", None)]  # fmt: skip
    for row, (column, name, fmt) in enumerate(panels, start=1):
        fig.add_trace(_line(rolling[column], f"{window}-day {name}"), row=row, col=1)
        fig.update_yaxes(title_text=name, tickformat=fmt, row=row, col=1)
    set_template(fig).update_layout(
        height=560, hovermode="x unified",
        margin={"l": 70, "r": 20, "t": 20, "b": 40}, legend={"orientation": "h", "y": -0.08},
    )  # fmt: skip
    return fig


def histogram_figure(returns: pd.Series, bench_returns: pd.Series | None) -> go.Figure:
    if returns.empty:
        return layout(empty(go.Figure(), "no returns recorded"), "days")
    fig = go.Figure(go.Histogram(x=returns.to_numpy(), name="portfolio", opacity=0.75, nbinsx=60))
    if bench_returns is not None and not bench_returns.dropna().empty:
        fig.add_trace(
            go.Histogram(x=bench_returns.dropna().to_numpy(), name="benchmark", opacity=0.5,
                         nbinsx=60)
        )  # fmt: skip
    fig = layout(fig, "days")
    fig.update_layout(barmode="overlay", hovermode="closest")
    fig.update_xaxes(title_text="daily return", tickformat=".1%")
    return fig


def exposure_figure(frame: pd.DataFrame) -> go.Figure:
    if frame.dropna(how="all").empty:
        return layout(empty(go.Figure(), "no holdings or cash recorded"), "", percent=True)
    fig = go.Figure()
    if frame["invested"].notna().any():
        fig.add_trace(_line(frame["invested"], "invested (sum of weights)"))
    if frame["cash"].notna().any():
        fig.add_trace(_line(frame["cash"], "cash", line={"dash": "dot"}))
    return layout(fig, "fraction of equity", percent=True)


def holdings_figure(table: pd.DataFrame) -> go.Figure:
    """Stacked weights of the top holdings with one colour each and a grey "other" band."""
    fig = go.Figure()
    if table.empty:
        return layout(empty(fig, "no holdings recorded"), "weight", percent=True)
    for i, (symbol, column) in enumerate(table.items()):
        color = OTHER_COLOR if symbol == "other" else PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=column.index, y=column.round(5).to_numpy(), name=str(symbol),
                stackgroup="weights", mode="lines", line={"width": 0.5, "color": color},
                fillcolor=color,
            )
        )  # fmt: skip
    return layout(fig, "weight of equity", percent=True, height=420)


def weights_heatmap(table: pd.DataFrame) -> go.Figure:
    """Symbols (rows, by average weight) x dates, coloured by weight; white = not held."""
    if table.empty:
        return layout(empty(go.Figure(), "no holdings recorded"), "symbol")
    order = table.drop(columns="other", errors="ignore").mean().sort_values(ascending=False)
    table = table[[*order.index, *(["other"] if "other" in table else [])]]
    fig = go.Figure(
        go.Heatmap(
            z=table.T.round(4).to_numpy(), x=table.index, y=[str(c) for c in table.columns],
            colorscale="Blues", zmin=0.0, colorbar={"title": "weight", "tickformat": ".0%"},
            hovertemplate="%{y} %{x|%Y-%m-%d}: %{z:.1%}<extra></extra>",
        )
    )  # fmt: skip
    fig = layout(fig, "", height=max(260, 60 + 18 * table.shape[1]))
    fig.update_layout(hovermode="closest", yaxis={"autorange": "reversed", "tickformat": None})
    fig.update_yaxes(type="category")
    return fig


def turnover_figure(turnover: pd.Series) -> go.Figure:
    if turnover.empty:
        return layout(empty(go.Figure(), "no equity recorded"), "turnover", percent=True)
    x = turnover.index.to_timestamp()
    fig = go.Figure(go.Bar(x=x, y=turnover.to_numpy(), name="one-way turnover"))
    return layout(fig, "traded / 2 / mean equity", percent=True)


def costs_figure(net: pd.Series, gross: pd.Series) -> go.Figure:
    """Equity before costs against equity after them; the gap is the money costs took."""
    if net.empty:
        return layout(empty(go.Figure(), "no equity recorded"), "value (money)")
    fig = go.Figure(
        [
            _line(gross, "before costs (costs paid so far added back)", line={"dash": "dot"}),
            _line(net, "after costs (the run's equity)", fill="tonexty"),
        ]
    )
    return layout(fig, "value (money)")


def pnl_figure(pnl: pd.Series, title: str, top: int = PNL_SYMBOLS) -> go.Figure:
    """Horizontal bars of P&L: the ``top`` best and ``top`` worst entries (all when fewer)."""
    if pnl.empty:
        return layout(empty(go.Figure(), "no trades recorded"), title)
    shown = pnl if len(pnl) <= 2 * top else pd.concat([pnl.head(top), pnl.tail(top)])
    shown = shown.sort_values()
    colors = ["#1e8449" if v >= 0 else "#c0392b" for v in shown.to_numpy()]
    fig = go.Figure(
        go.Bar(
            x=shown.to_numpy(), y=[str(s) for s in shown.index], orientation="h",
            marker_color=colors, name="P&L", hovertemplate="%{y}: %{x:,.2f}<extra></extra>",
        )
    )  # fmt: skip
    fig = layout(fig, title, height=max(240, 60 + 22 * len(shown)))
    fig.update_layout(hovermode="closest", yaxis={"tickformat": None})
    fig.update_yaxes(type="category")
    fig.update_xaxes(title_text="P&L (money)", tickformat=",.0f")
    return fig


def holding_period_figure(trips: pd.DataFrame) -> go.Figure:
    if trips.empty:
        return layout(empty(go.Figure(), "no closed round trips"), "round trips")
    fig = go.Figure(go.Histogram(x=trips["holding_days"].to_numpy(), name="round trips"))
    fig = layout(fig, "round trips")
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title_text="calendar days held")
    return fig


__all__ = [
    "HEATMAP_SYMBOLS",
    "OTHER_COLOR",
    "PALETTE",
    "PNL_SYMBOLS",
    "TOP_HOLDINGS",
    "costs_figure",
    "drawdown_figure",
    "empty",
    "equity_figure",
    "excess_figure",
    "exposure_figure",
    "histogram_figure",
    "holding_period_figure",
    "holdings_figure",
    "layout",
    "monthly_figure",
    "pnl_figure",
    "rolling_figure",
    "turnover_figure",
    "weights_heatmap",
    "yearly_figure",
]
