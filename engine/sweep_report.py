"""Sweep outputs: sweep.csv, sweep.json and sweep.html (metrics against the swept key, the
pure-wavelet and pure-ML ends marked, equity curves overlaid, in-sample vs out-of-sample)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from engine.sweep_types import SweepResult

PLOTTED = (("sharpe_ratio", "Sharpe"), ("cagr", "CAGR"), ("max_drawdown", "max drawdown"),
           ("turnover", "turnover / year"))  # fmt: skip


def _x_key(result: SweepResult) -> str | None:
    grid = result.sweep.grid
    if "ml.blend_ratio" in grid:
        return "ml.blend_ratio"
    numeric = [k for k, v in grid.items() if all(isinstance(x, int | float) for x in v)]
    return numeric[0] if numeric else None


def _figures(result: SweepResult) -> list[Any]:
    # lazy: plotly costs seconds to import
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    table = result.table()
    xkey = _x_key(result)
    figs = []
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in PLOTTED])
    others = [k for k in result.sweep.grid if k != xkey]
    group_cols = ["period", *others]
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
    for gi, (gkey, g) in enumerate(table.groupby(group_cols, sort=False, dropna=False)):
        name = ", ".join(str(x) for x in (gkey if isinstance(gkey, tuple) else (gkey,)))
        x = g[xkey] if xkey else g["point"]
        color = palette[gi % len(palette)]  # one colour per group in every panel
        for i, (metric, _) in enumerate(PLOTTED):
            fig.add_trace(
                go.Scatter(x=x, y=g[metric], mode="lines+markers", name=name,
                           legendgroup=name, showlegend=i == 0,
                           line={"color": color}, marker={"color": color}),
                row=i // 2 + 1, col=i % 2 + 1,
            )  # fmt: skip
    if xkey == "ml.blend_ratio":
        for r in (1, 2):
            for c in (1, 2):
                fig.add_vline(x=0.0, line_dash="dot", line_color="gray", row=r, col=c)
                fig.add_vline(x=1.0, line_dash="dot", line_color="gray", row=r, col=c)
        fig.add_annotation(x=0.0, y=1.08, xref="x", yref="paper", text="pure wavelet",
                           showarrow=False)  # fmt: skip
        fig.add_annotation(x=1.0, y=1.08, xref="x", yref="paper", text="pure ML",
                           showarrow=False)  # fmt: skip
    fig.update_layout(height=700, title=f"metrics against {xkey or 'point'}")
    figs.append(fig)
    eq = go.Figure()
    for p in result.points:
        e = p.get("equity")
        if e:
            eq.add_trace(go.Scatter(x=e["dates"], y=e["values"], mode="lines",
                                    name=f"[{p['period']}] {p['label']}"))  # fmt: skip
    eq.update_layout(height=500, title="equity curves", yaxis_title="equity")
    figs.append(eq)
    return figs


def _selected_html(result: SweepResult) -> str:
    sel = result.selected
    if not sel:
        return "<p>No point could be selected (no finished point with the metric).</p>"
    metric = result.sweep.metric

    def fmt(m: dict | None) -> str:
        if not m:
            return "n/a"
        v = m.get(metric)
        return "n/a" if v is None else f"{v:.3f}"

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
    """Write sweep.csv, sweep.json and sweep.html into ``out``."""
    # lazy: plotly
    import plotly.io as pio

    out.mkdir(parents=True, exist_ok=True)
    table = result.table()
    paths = {"csv": out / "sweep.csv", "json": out / "sweep.json", "html": out / "sweep.html"}
    table.to_csv(paths["csv"], index=False)
    summary = {
        "sweep_id": result.sweep_id, "selected": result.selected, "skipped": result.skipped,
        "failed": [{k: f.get(k) for k in ("label", "period", "error")} for f in result.failed],
        "cache_hits": result.cache_hits, "cache_misses": result.cache_misses,
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
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "n/a" if pd.isna(v) else f"{v:.4g}")
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
{f'<div class="fail"><b>failed points</b><ul>{failed}</ul></div>' if failed else ""}
{"".join(charts)}
<h2>all points</h2>{shown.to_html(index=False, escape=True)}
</body></html>"""
    paths["html"].write_text(page)
    return paths
