"""Sweep outputs: sweep.csv, sweep.json and sweep.html (metrics against the swept key, the
pure-wavelet and pure-ML ends marked, the selected point starred, Sharpe ratios with bootstrap
intervals, equity curves against the benchmark, in-sample vs out-of-sample, and in words whether
the selected point can be told apart from the others: :mod:`engine.sweep_stats`)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from engine.metrics import align_benchmark
from engine.sweep_stats import grid_statistics, verdict
from engine.sweep_types import PERCENT_METRICS, POINT_METRICS, SweepResult, format_metric

PLOTTED = (("sharpe_ratio", "Sharpe"), ("cagr", "CAGR"), ("max_drawdown", "max drawdown"),
           ("turnover", "turnover / year"))  # fmt: skip


def _x_key(result: SweepResult) -> str | None:
    grid = result.sweep.grid
    if "ml.blend_ratio" in grid:
        return "ml.blend_ratio"
    numeric = [k for k, v in grid.items() if all(isinstance(x, int | float) for x in v)]
    return numeric[0] if numeric else None


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
#: Equity curves named in the legend per period (plus the selected point); the rest on hover.
LEGEND_TOP = 5


def _axis_format(metric: str) -> dict[str, str]:
    return {"tickformat": ".0%" if metric in PERCENT_METRICS else ".2f"}


def _selected_period(result: SweepResult) -> str:
    return "selection" if result.sweep.selection else "full"


def _metrics_figure(result: SweepResult, table: pd.DataFrame) -> Any:
    """Metrics against the swept key; Sharpe with its bootstrap interval; the selection starred."""
    import plotly.graph_objects as go  # lazy: plotly costs seconds to import
    from plotly.subplots import make_subplots

    xkey = _x_key(result)
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in PLOTTED])
    others = [k for k in result.sweep.grid if k != xkey]
    sel = (result.selected or {}).get("label")
    for gi, (gkey, g) in enumerate(table.groupby(["period", *others], sort=False, dropna=False)):
        name = ", ".join(str(x) for x in (gkey if isinstance(gkey, tuple) else (gkey,)))
        x = g[xkey] if xkey else g["point"]
        color = _PALETTE[gi % len(_PALETTE)]  # one colour per group in every panel
        for i, (metric, _) in enumerate(PLOTTED):
            error = None
            if metric == "sharpe_ratio" and g["sharpe_ci_low"].notna().any():
                error = {"type": "data", "symmetric": False,
                         "array": (g["sharpe_ci_high"] - g[metric]).tolist(),
                         "arrayminus": (g[metric] - g["sharpe_ci_low"]).tolist()}  # fmt: skip
            text = [f"{p}: {format_metric(metric, v)}"
                    for p, v in zip(g["point"], g[metric], strict=True)]  # fmt: skip
            fig.add_trace(
                go.Scatter(x=x, y=g[metric], mode="lines+markers", name=name, legendgroup=name,
                           showlegend=i == 0, line={"color": color}, marker={"color": color},
                           error_y=error, text=text, hoverinfo="text"),
                row=i // 2 + 1, col=i % 2 + 1,
            )  # fmt: skip
            chosen = g[g["point"] == sel]
            if len(chosen):
                fig.add_trace(
                    go.Scatter(x=chosen[xkey] if xkey else chosen["point"], y=chosen[metric],
                               mode="markers", name=f"selected: {sel}", legendgroup="selected",
                               showlegend=gi == 0 and i == 0, hoverinfo="skip",
                               marker={"symbol": "star", "size": 16, "color": "gold",
                                       "line": {"color": "black", "width": 1}}),
                    row=i // 2 + 1, col=i % 2 + 1,
                )  # fmt: skip
    for i, (metric, _) in enumerate(PLOTTED):
        fig.update_yaxes(_axis_format(metric), row=i // 2 + 1, col=i % 2 + 1)
    if xkey == "ml.blend_ratio":
        for r in (1, 2):
            for c in (1, 2):
                fig.add_vline(x=0.0, line_dash="dot", line_color="gray", row=r, col=c)
                fig.add_vline(x=1.0, line_dash="dot", line_color="gray", row=r, col=c)
        fig.add_annotation(x=0.0, y=1.08, xref="x", yref="paper", text="pure wavelet",
                           showarrow=False)  # fmt: skip
        fig.add_annotation(x=1.0, y=1.08, xref="x", yref="paper", text="pure ML",
                           showarrow=False)  # fmt: skip
    level = result.statistics.get("level", 0.95)
    fig.update_layout(height=700, title=f"metrics against {xkey or 'point'} "
                      f"(Sharpe with {level:.0%} block-bootstrap intervals)")  # fmt: skip
    return fig


def _equity_figure(result: SweepResult) -> Any:
    """Equity curves: the selected point bold, the top few named, the rest grey (on hover)."""
    import plotly.graph_objects as go  # lazy: plotly

    metric = result.sweep.metric
    lower_is_better = metric in ("annualized_volatility", "turnover")
    sel = (result.selected or {}).get("label")
    fig = go.Figure()
    for period in dict.fromkeys(p["period"] for p in result.points):
        group = [p for p in result.points if p["period"] == period and p.get("equity")]
        ranked = sorted(
            (p for p in group if p["metrics"].get(metric) is not None),
            key=lambda p: p["metrics"][metric], reverse=not lower_is_better,
        )  # fmt: skip
        named = {p["label"] for p in ranked[:LEGEND_TOP]}
        for p in sorted(group, key=lambda p: p["label"] == sel):  # the selection drawn last
            e, label = p["equity"], p["label"]
            shown = f"{metric} {format_metric(metric, p['metrics'].get(metric))}"
            style = (
                {"line": {"color": "black", "width": 3}, "name": f"[{period}] selected: {label}"}
                if label == sel
                else {"line": {"width": 1.5}, "name": f"[{period}] {label}"} if label in named
                else {"line": {"color": "lightgray", "width": 1}, "name": f"[{period}] {label}",
                      "showlegend": False}
            )  # fmt: skip
            fig.add_trace(go.Scatter(x=e["dates"], y=e["values"], mode="lines",
                                     hovertemplate=f"{label}<br>%{{x}}: %{{y:,.0f}}<br>{shown}"
                                     "<extra></extra>", **style))  # fmt: skip
        bench = result.benchmark.get(period)
        if bench and group:
            fig.add_trace(go.Scatter(
                x=bench["dates"], y=bench["values"], mode="lines",
                name=f"[{period}] benchmark {bench['symbol']}",
                line={"color": "black", "dash": "dash", "width": 1.5},
            ))  # fmt: skip
    fig.update_layout(
        height=500, title=f"equity curves (top {LEGEND_TOP} by {metric} and the selected point "
        "named; the others grey, on hover)", yaxis={"title": "equity", "tickformat": ",.0f"},
    )  # fmt: skip
    return fig


def _figures(result: SweepResult) -> list[Any]:
    return [_metrics_figure(result, result.table()), _equity_figure(result)]


def benchmark_curves(result: SweepResult, store: Any) -> dict[str, dict[str, Any]]:
    """Per period, the benchmark rebased to the points' starting equity on the points' days."""
    symbol = result.sweep.base.benchmark or store.market.market_symbol()
    out: dict[str, dict[str, Any]] = {}
    if not symbol:
        return out
    for period in dict.fromkeys(p["period"] for p in result.points):
        eq = next((p["equity"] for p in result.points
                   if p["period"] == period and p.get("equity")), None)  # fmt: skip
        if not eq or not eq["dates"]:
            continue
        days = pd.to_datetime(eq["dates"])
        b = store.market.get_benchmark(symbol, start_date=days[0].date(), end_date=days[-1].date())
        if b.empty:
            continue
        close = align_benchmark(b["close"], pd.DatetimeIndex(days)).dropna()
        if close.empty:
            continue
        values = close / close.iloc[0] * eq["values"][days.get_loc(close.index[0])]
        out[period] = {"symbol": symbol, "dates": [d.strftime("%Y-%m-%d") for d in close.index],
                       "values": [round(float(v), 2) for v in values]}  # fmt: skip
    return out


def _selected_html(result: SweepResult) -> str:
    sel = result.selected
    if not sel:
        return "<p>No point could be selected (no finished point with the metric).</p>"
    metric = result.sweep.metric

    def fmt(m: dict | None) -> str:
        if not m:
            return "n/a"
        return format_metric(metric, m.get(metric))

    if result.sweep.test:
        return (
            f"<p><b>Selected on the selection period</b> by {html.escape(metric)}: "
            f"<code>{html.escape(sel['label'])}</code>. In-sample (selection) {metric}: "
            f"{fmt(sel['selection'])}; <b>out-of-sample (test) {metric}: {fmt(sel.get('test'))}"
            "</b>. The test figure is the honest estimate; the selection figure is optimistic "
            "because the point was chosen on it.</p>"
        )
    return (
        f"<p><b>Best point</b> by {html.escape(metric)}: <code>{html.escape(sel['label'])}</code> "
        f"({fmt(sel['selection'])}). <b>In-sample:</b> it was chosen on the period it is scored "
        "on; add <code>selection</code> and <code>test</code> periods for an out-of-sample "
        "estimate.</p>"
    )


def write_sweep_outputs(result: SweepResult, out: Path) -> dict[str, Path]:
    """Write sweep.csv, sweep.json and sweep.html into ``out`` (with the statistics)."""
    # lazy: plotly
    import plotly.io as pio

    out.mkdir(parents=True, exist_ok=True)
    if not result.statistics:
        result.statistics = grid_statistics(
            result.points, (result.selected or {}).get("label"), _selected_period(result)
        )
    table = result.table()
    paths = {"csv": out / "sweep.csv", "json": out / "sweep.json", "html": out / "sweep.html"}
    table.to_csv(paths["csv"], index=False)
    summary = {
        "sweep_id": result.sweep_id, "selected": result.selected, "skipped": result.skipped,
        "failed": [{k: f.get(k) for k in ("label", "period", "error")} for f in result.failed],
        "cache_hits": result.cache_hits, "cache_misses": result.cache_misses,
        "statistics": {**result.statistics, "verdict": verdict(result.statistics)},
        "benchmark": {k: v["symbol"] for k, v in result.benchmark.items()},
        "points": [{k: p.get(k) for k in ("label", "period", "changes", "metrics", "db_id")}
                   for p in result.points],
    }  # fmt: skip
    paths["json"].write_text(json.dumps(summary, indent=2, default=str))
    charts = []
    for i, fig in enumerate(_figures(result) if not table.empty else []):
        charts.append(pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0
                                  else False))  # fmt: skip
    failed = "".join(
        f"<li>{html.escape(f['label'])} [{f['period']}]: {html.escape(f['error'])}</li>"
        for f in result.failed
    )
    shown = table.copy()
    for col in shown.columns:
        if col in POINT_METRICS or col.startswith("sharpe_ci"):
            metric = "sharpe_ratio" if col.startswith("sharpe_ci") else col
            shown[col] = shown[col].map(lambda v, m=metric: format_metric(m, v))
    words = "".join(f"<li>{html.escape(w)}</li>" for w in verdict(result.statistics))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>sweep {html.escape(result.sweep.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;font-size:90%}}
.fail{{background:#fee;padding:.5em}}</style></head><body>
<h1>sweep: {html.escape(result.sweep.name)}</h1>
<p>{len(result.points)} points finished, {len(result.failed)} failed,
{result.skipped} reused from an earlier run. Shared score caches: {result.cache_hits} hit(s),
{result.cache_misses} computed.</p>
{_selected_html(result)}
{f'<ul class="stats">{words}</ul>' if words else ""}
{f'<div class="fail"><b>failed points</b><ul>{failed}</ul></div>' if failed else ""}
{"".join(charts)}
<h2>all points</h2><div style="overflow-x:auto">{shown.to_html(index=False, escape=True)}</div>
</body></html>"""
    paths["html"].write_text(page)
    return paths
