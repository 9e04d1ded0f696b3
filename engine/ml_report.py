"""The ML sections of a report: cross-sectional IC per score, charts and diagnostics.

:func:`sections` returns ``[(heading, html)]`` for :func:`engine.report.write_outputs`
(``sections=``) and for the standalone ``ml_eval.html`` of ``sentinel ml evaluate``. Every
figure comes from an :class:`engine.evaluate.RunEvaluation`: forward returns not yet known on
the run's last day are left out and counted.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from engine.evaluate import (
    ImportanceLog,
    RunEvaluation,
    evaluate_predictions,
    fmt,
    sample_reader,
)
from engine.nn_importance import REPEATS as NN_REPEATS
from engine.nn_importance import NetworkImportance
from sentinel.ml.evaluation import RETURN, T_THRESHOLD, EvaluationError

#: Days in the rolling mean of the IC chart.
ROLLING_DAYS = 8
#: Scores whose quantile returns are charted (the run's decision score and the model's).
QUANTILE_CHART_SCORES = ("blended_score", "predicted_return")

_COLUMNS = ("score", "days", "mean IC", "ICIR", "t (Newey-West)", "hit rate",
            "top - bottom", "turnover", "verdict")  # fmt: skip


def _table(
    columns: tuple[str, ...] | list[str],
    rows: list[list[Any]],
    caption: str,
    text_last: bool = False,
) -> str:
    """An HTML table: first column text, the rest numbers (right-aligned) unless ``text_last``."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    num = ' class="num"'

    def cls(i: int) -> str:
        return num if i and not (text_last and i == len(columns) - 1) else ""

    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{escape(str(c))}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return (
        f'<div class="table-wrap"><table class="data"><caption>{escape(caption)}</caption>'
        f"<tr>{head}</tr>{body}</table></div>"
    )


def _chart(fig: go.Figure, div_id: str, include_js: bool) -> str:
    fig.update_layout(height=380, margin={"l": 50, "r": 20, "t": 40, "b": 40})
    return pio.to_html(fig, include_plotlyjs=include_js, full_html=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})  # fmt: skip


def ic_table(run_eval: RunEvaluation) -> str:
    """Per score: mean IC, ICIR, Newey-West t, hit rate, spread, turnover and the verdict."""
    rows = []
    for name, s in run_eval.evaluation.summary.items():
        rows.append([
            name, s["n_days"], fmt(s["mean_ic"]), fmt(s["icir"], 2),
            fmt(s["t_nw"], 2) + (f" (lag {s['nw_lag']})" if s["t_nw"] is not None else ""),
            fmt(s["hit_rate"], 2), fmt(s["spread_mean"], 4), fmt(s["turnover"], 2),
            s["verdict"],
        ])  # fmt: skip
    return _table(_COLUMNS, rows, "rank IC against the realised forward return, per score", True)


def ic_chart(run_eval: RunEvaluation, include_js: bool) -> str:
    """Daily IC of the blended score and the rolling mean IC of every score."""
    pd_ = run_eval.evaluation.per_day
    known = pd_[pd_["known"]]
    fig = go.Figure()
    for name, g in known.groupby("score", sort=False):
        if g["ic"].notna().sum() == 0:
            continue
        roll = g.set_index("date")["ic"].rolling(ROLLING_DAYS, min_periods=2).mean()
        shown = True if name == "blended_score" else "legendonly"
        fig.add_trace(go.Scatter(x=roll.index, y=roll, name=f"{name} ({ROLLING_DAYS}-day mean)",
                                 visible=shown))  # fmt: skip
        if name == "blended_score":
            fig.add_trace(go.Bar(x=g["date"], y=g["ic"], name="blended_score (daily IC)",
                                 opacity=0.35))  # fmt: skip
    fig.add_hline(y=0, line_color="#888")
    fig.update_layout(title="rank IC over time (click a legend entry to show a score)",
                      yaxis_title="rank IC")  # fmt: skip
    return _chart(fig, "ml-ic", include_js)


def quantile_chart(run_eval: RunEvaluation, score: str, include_js: bool) -> str:
    """Cumulative sum of each quantile's mean forward return over the known days."""
    pd_ = run_eval.evaluation.per_day
    g = pd_[(pd_["score"] == score) & pd_["known"]].set_index("date")
    fig = go.Figure()
    cols = [c for c in g.columns if c.startswith("q") and c.endswith("_return")]
    for c in cols:
        fig.add_trace(go.Scatter(x=g.index, y=g[c].fillna(0).cumsum(), name=c[:-7]))
    fig.add_trace(go.Scatter(x=g.index, y=g["spread"].fillna(0).cumsum(), name="top - bottom",
                             line={"dash": "dash", "color": "black"}))  # fmt: skip
    fig.update_layout(title=f"{score}: cumulative quantile forward returns (q1 = lowest)",
                      yaxis_title="sum of forward returns")  # fmt: skip
    return _chart(fig, f"ml-q-{score}", include_js)


def calibration_table(frame: pd.DataFrame, n: int = 10) -> str:
    """Pooled over known rows: mean predicted vs mean realised return by predicted decile, with
    the zero baseline's error beside the model's."""
    d = frame[["predicted_return", RETURN]].dropna()
    if len(d) < n:
        return '<p class="note">too few known predictions for a calibration table</p>'
    d = d.assign(decile=pd.qcut(d["predicted_return"].rank(method="first"), n, labels=False) + 1)
    rows = [
        [int(k), len(g), fmt(g["predicted_return"].mean(), 4), fmt(g[RETURN].mean(), 4)]
        for k, g in d.groupby("decile")
    ]
    err = d["predicted_return"] - d[RETURN]
    rmse, rmse0 = float(np.sqrt((err**2).mean())), float(np.sqrt((d[RETURN] ** 2).mean()))
    corr = d["predicted_return"].corr(d[RETURN])
    caption = (f"calibration by predicted decile ({len(d)} known predictions; RMSE {rmse:.4f} "
               f"vs {rmse0:.4f} for the zero baseline; correlation {fmt(corr)})")  # fmt: skip
    return _table(["decile", "n", "mean predicted", "mean realised"], rows, caption)


def predicted_vs_realised_chart(frame: pd.DataFrame, n: int = 10, max_points: int = 4000) -> str:
    """Known rows as points (a seeded sample when there are many), the decile means as a line
    and the diagonal a calibrated model would sit on."""
    d = frame[["predicted_return", RETURN]].dropna()
    if len(d) < n:
        return ""
    pts = d.sample(max_points, random_state=0) if len(d) > max_points else d
    dec = pd.qcut(d["predicted_return"].rank(method="first"), n, labels=False)
    means = d.groupby(dec).mean()
    lo, hi = float(d["predicted_return"].min()), float(d["predicted_return"].max())
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=pts["predicted_return"], y=pts[RETURN], mode="markers",
                             name=f"symbol-days ({len(pts):,} of {len(d):,})",
                             marker={"size": 4, "opacity": 0.3}))  # fmt: skip
    fig.add_trace(go.Scatter(x=means["predicted_return"], y=means[RETURN], mode="lines+markers",
                             name=f"mean of each of {n} predicted bins"))  # fmt: skip
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="realised = predicted",
                             line={"dash": "dot", "color": "#888"}))  # fmt: skip
    fig.update_layout(title="predicted vs realised forward return (known rows)",
                      xaxis_title="predicted return", yaxis_title="realised return")  # fmt: skip
    return _chart(fig, "ml-pred-vs-real", False)


def fallback_table(run_eval: RunEvaluation) -> str:
    """How often a symbol-day was scored without its model, and why."""
    fb = run_eval.fallbacks
    if not fb:
        return '<p class="note">every scored symbol-day had an ML prediction</p>'
    return _table(["reason", "symbol-days"], [[k, v] for k, v in fb.items()],
                  "symbol-days scored without an ML prediction (wavelet score alone)")  # fmt: skip


def importance_table(log: ImportanceLog | None, network: NetworkImportance | None = None) -> str:
    """Per feature at the latest retrain: XGBoost gain (mean over the symbols' boosters) and,
    beside it, the network's permutation importance (drop in rank IC, mean ± spread)."""
    gain = log.gain if log is not None else {}
    drop = network.mean if network is not None else {}
    if not gain and not drop:
        return ""
    total = sum(gain.values()) or 1.0
    columns = ["feature"]
    columns += ["XGBoost mean gain", "gain share"] if gain else []
    columns += ["network permutation ΔIC"] if drop else []
    rows = []
    for name in [*gain, *(n for n in drop if n not in gain)]:
        row = [name]
        if gain:
            row += [fmt(gain.get(name, 0.0), 5), f"{100 * gain.get(name, 0.0) / total:.1f} %"]
        if network is not None and drop:
            row.append(f"{drop[name]:.4f} ± {network.spread[name]:.4f}" if name in drop else "n/a")
        rows.append(row)
    parts, day = [], None
    if log is not None and gain:
        parts.append(f"XGBoost gain: mean over {log.n_models} symbols' boosters")
        day = log.day
    if network is not None and drop:
        parts.append(
            f"network: drop in rank IC on its training rows when the feature is shuffled, mean "
            f"± standard deviation over {NN_REPEATS} seeded shuffles, averaged over "
            f"{network.n_models} symbols' networks; ~0 means the network ignores it"
        )
        day = day or network.day
    what = " and ".join(
        w for w, on in (("XGBoost gain by feature", gain), ("network permutation importance", drop))
        if on
    )  # fmt: skip
    caption = f"{what} at the retrain of {day} ({'; '.join(parts)})"
    return _table(columns, rows, caption)


def sections(
    run_eval: RunEvaluation,
    *,
    include_js: bool = False,
    importance: ImportanceLog | None = None,
    network: NetworkImportance | None = None,
) -> list[tuple[str, str]]:
    """``[(heading, html)]``: IC table and verdicts, IC chart, quantile charts, diagnostics."""
    ev = run_eval.evaluation
    note = (
        f'<p class="note">Per rebalance day, the Spearman rank correlation across the universe '
        f"between each score and the return realised over the next {ev.horizon_days} days "
        f"(close to close). {ev.days_known} days are known; {ev.days_pending} days within the "
        f"horizon of the run's end ({run_eval.end}) are not yet known and enter no figure. "
        f"t is the mean IC's t-statistic with Newey-West errors (overlapping horizons); "
        f"|t| &lt; {T_THRESHOLD:g} reads as no evidence of information. Baselines: zero, "
        f"20-day reversal, 60-day momentum, ridge on the same 20 features refitted on each "
        f"retrain day. Statistics computed with pandas, scipy and NumPy (the Newey-West t "
        f"as statsmodels computes it), checked in the tests against statsmodels and "
        f"alphalens-reloaded.</p>"
    )
    out = [
        ("ML: cross-sectional IC", note + ic_table(run_eval)),
        ("ML: IC over time", ic_chart(run_eval, include_js)),
    ]
    charts = [quantile_chart(run_eval, s, False) for s in QUANTILE_CHART_SCORES if s in ev.summary]
    caption = (
        '<p class="note">Forward returns of consecutive days overlap when the horizon is '
        "longer than the rebalance spacing, so these sums show the ordering of the quantiles, "
        "not a tradable equity curve.</p>"
    )
    out.append(("ML: quantile returns", caption + "".join(charts)))
    diagnostics = (
        predicted_vs_realised_chart(run_eval.frame)
        + calibration_table(run_eval.frame)
        + fallback_table(run_eval)
        + importance_table(importance, network)
    )
    out.append(("ML: diagnostics", diagnostics))
    return out


def write_page(path: str | Path, run_eval: RunEvaluation, title: str) -> Path:
    """A standalone HTML page of the sections (``sentinel ml evaluate``'s ml_eval.html)."""
    body = "".join(f"<h2>{escape(h)}</h2>{html}" for h, html in sections(run_eval, include_js=True))
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        "</title><style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5rem "
        "auto;padding:0 1rem}table{border-collapse:collapse;font-size:.92rem}td,th{border-bottom:"
        "1px solid #ddd;padding:.25rem .7rem;text-align:left}td.num{text-align:right}"
        "caption{text-align:left;font-weight:600}p.note{color:#555}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    path = Path(path)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def backtest_sections(
    store: Any,
    cfg: Any,
    predictions: pd.DataFrame,
    retrains: list,
    end: Any,
    *,
    book: Any = None,
    importance: ImportanceLog | None = None,
    network: NetworkImportance | None = None,
) -> list[tuple[str, str]]:
    """The ML sections of a backtest report (walk-forward runs with ML; none otherwise).

    An evaluation that cannot be made (one symbol, no known forward return yet) becomes one
    section saying why, never a failed backtest.
    """
    if not cfg.ml.walk_forward or predictions.empty or "predicted_return" not in predictions:
        return []
    read_samples = sample_reader(store)  # the last retrain's samples, read once for both
    try:
        run_eval = evaluate_predictions(store, cfg, predictions, retrains, end, book=book,
                                        read_samples=read_samples)  # fmt: skip
    except EvaluationError as exc:
        return [
            ("ML: cross-sectional IC", f'<p class="note">not evaluated: {escape(str(exc))}</p>')
        ]
    if network is not None:
        network.compute(store, read_samples)
    return sections(run_eval, importance=importance, network=network)
