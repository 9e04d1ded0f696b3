"""The run's outputs: one self-contained HTML report with plotly charts, and the CSV/JSON records.

The report must open offline (the machines running backtests have no internet), so plotly.js is
inlined exactly once, with the first chart; the others reference it. Every piece of user text
(title, warnings, config, metric names) is HTML-escaped by the template's autoescaping; symbol names
inside chart data are escaped by plotly's JSON encoder.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment
from markupsafe import Markup

from engine.metrics import align_benchmark, to_json_float
from sentinel.errors import ConfigError
from sentinel.files import fsync_path

#: Holdings chart: symbols kept by average weight; the rest are summed into "other".
TOP_HOLDINGS = 15

#: Metrics shown as percentages in the table; the others as plain numbers.
PERCENT_METRICS = frozenset(
    {
        "total_return",
        "cagr",
        "annualized_volatility",
        "max_drawdown",
        "benchmark_total_return",
        "benchmark_cagr",
        "benchmark_max_drawdown",
        "excess_return",
        "excess_total_return",
        "turnover",
        "hit_rate",
        "exposure",
    }
)

CHART_IDS = ("chart-equity", "chart-drawdown", "chart-holdings", "chart-turnover")

#: What a run's output folder may hold; a folder with anything else is not replaced.
OUTPUT_FILES = ("metrics.json", "trades.csv", "equity.csv", "report.html", "predictions.csv")

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.warnings { background: #fff3cd; border: 2px solid #d39e00; border-radius: 4px;
  padding: .5rem 1rem; margin: 1rem 0; }
.warnings strong { color: #8a6100; }
table.metrics { border-collapse: collapse; }
table.metrics td, table.metrics th { border-bottom: 1px solid #ddd; padding: .25rem .8rem; }
table.metrics td.value { text-align: right; font-variant-numeric: tabular-nums; }
pre.config { background: #f6f8fa; padding: .8rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if warnings %}
<div class="warnings" role="alert"><strong>Warnings</strong>
<ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>
</div>
{% endif %}
<h2>Metrics</h2>
<table class="metrics">
<tr><th>metric</th><th>value</th></tr>
{% for name, value in metrics %}<tr><td>{{ name }}</td><td class="value">{{ value }}</td></tr>
{% endfor %}</table>
{% for heading, chart in charts %}
<h2>{{ heading }}</h2>
{{ chart }}
{% endfor %}
{% if config_text %}
<h2>Configuration</h2>
<pre class="config">{{ config_text }}</pre>
{% endif %}
</body>
</html>
"""

_ENV = Environment(autoescape=True, keep_trailing_newline=True)


def write_report(
    path: Path,
    *,
    title: str,
    equity: pd.Series,
    benchmark: pd.Series | None,
    weights: pd.DataFrame,
    trades: pd.DataFrame,
    metrics: Mapping[str, Any],
    warnings: Sequence[str] = (),
    config_text: str = "",
) -> Path:
    """Write one self-contained ``report.html`` (works offline) and return its path.

    Charts: equity against the benchmark rebased to the equity's value on the benchmark's first
    known day; drawdown from the running peak; holdings as stacked weights (top
    :data:`TOP_HOLDINGS` symbols by average weight, the rest as "other"); monthly one-way turnover
    (traded value / 2 / mean equity of the month, so twelve months add up to the annual
    ``turnover`` metric). Warnings appear in a banner above everything else, because a figure
    computed with look-ahead must not be read without them.
    """
    equity = equity.dropna().sort_index().astype(float)
    figures = [
        ("Equity", _equity_figure(equity, benchmark)),
        ("Drawdown", _drawdown_figure(equity)),
        ("Holdings", _holdings_figure(weights)),
        ("Turnover", _turnover_figure(trades, equity)),
    ]
    charts = [
        (heading, Markup(_figure_html(fig, div_id, first=i == 0)))
        for i, ((heading, fig), div_id) in enumerate(zip(figures, CHART_IDS, strict=True))
    ]
    html = _ENV.from_string(_TEMPLATE).render(
        title=title,
        warnings=list(warnings),
        metrics=[
            (name, format_metric(name, value))
            for name, value in metrics.items()
            if not isinstance(value, Mapping | list | tuple)  # details live in the warnings
        ],
        charts=charts,
        config_text=config_text,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def write_outputs(
    folder: Path,
    *,
    metrics: Mapping[str, Any],
    trades: pd.DataFrame,
    equity: pd.Series,
    benchmark: pd.Series | None,
    weights: pd.DataFrame,
    cash: pd.Series | None = None,
    title: str = "sentinel backtest",
    warnings: Sequence[str] = (),
    config_text: str = "",
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Path]:
    """Write metrics.json, trades.csv, equity.csv and report.html into ``folder``, all or nothing.

    The files are written into a temporary folder beside ``folder``, which then replaces it whole
    (:func:`staged_folder`): a run killed at any moment leaves the previous complete folder or the
    new complete one, never a mix. ``tables`` adds CSV files by name (``predictions`` ->
    predictions.csv). ``equity.csv`` has the columns date, equity, then cash and benchmark when
    given; the benchmark is its close aligned onto the equity dates (forward-filled, as in the
    metrics). Returns the final paths by name: ``metrics``, ``trades``, ``equity``, ``report``
    and one per table.
    """
    folder = _absolute(folder)
    for name in tables or {}:
        if f"{name}.csv" not in OUTPUT_FILES:
            raise ValueError(f"not an output table: {name!r}")
    with staged_folder(folder) as tmp:
        names = _write_files(
            tmp, metrics=metrics, trades=trades, equity=equity, benchmark=benchmark,
            weights=weights, cash=cash, title=title, warnings=warnings, config_text=config_text,
            tables=tables or {},
        )  # fmt: skip
    return {key: folder / name for key, name in names.items()}


def _write_files(
    folder: Path,
    *,
    metrics: Mapping[str, Any],
    trades: pd.DataFrame,
    equity: pd.Series,
    benchmark: pd.Series | None,
    weights: pd.DataFrame,
    cash: pd.Series | None,
    title: str,
    warnings: Sequence[str],
    config_text: str,
    tables: Mapping[str, pd.DataFrame],
) -> dict[str, str]:
    paths = {
        "metrics": folder / "metrics.json",
        "trades": folder / "trades.csv",
        "equity": folder / "equity.csv",
        "report": folder / "report.html",
    }
    safe = {str(k): _json_value(v) for k, v in metrics.items()}
    paths["metrics"].write_text(
        json.dumps(safe, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    trades.to_csv(paths["trades"], index=False)

    equity = equity.dropna().sort_index().astype(float)
    table = pd.DataFrame({"equity": equity})
    if cash is not None:
        table["cash"] = cash.reindex(equity.index)
    if benchmark is not None:
        table["benchmark"] = align_benchmark(benchmark, equity.index)
    table.index.name = "date"
    table.to_csv(paths["equity"], date_format="%Y-%m-%d")

    write_report(
        paths["report"],
        title=title,
        equity=equity,
        benchmark=benchmark,
        weights=weights,
        trades=trades,
        metrics=safe,
        warnings=warnings,
        config_text=config_text,
    )
    for name, frame in tables.items():
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return {key: path.name for key, path in paths.items()}


# -- all-or-nothing output folders ---------------------------------------------------------------
def _absolute(folder: str | os.PathLike[str]) -> Path:
    """``folder`` as an absolute path; a symlinked output folder is replaced where it points."""
    path = Path(os.path.abspath(folder))
    return path.resolve() if path.is_symlink() else path


def check_output_folder(folder: str | os.PathLike[str]) -> Path:
    """Refuse (:class:`ConfigError`) a place a run must not replace; return it absolute.

    A run replaces its whole output folder, so the folder must be new, empty, or hold only the
    files a run writes (:data:`OUTPUT_FILES`): anything else there would be deleted.
    """
    path = _absolute(folder)
    if not path.name:
        raise ConfigError(f"output: {folder} cannot be a run's output folder")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output: {path} exists and is not a folder")
    if path.is_dir():
        foreign = sorted(p.name for p in path.iterdir() if p.name not in OUTPUT_FILES)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise ConfigError(
                f"output: {path} holds {shown}, which a run did not write; a run replaces its "
                "whole output folder, so choose a new or empty folder"
            )
    return path


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``folder``; when the block ends, it replaces it.

    The replacement is one ``renameat2(RENAME_EXCHANGE)`` on Linux (atomic: every reader sees the
    old folder or the new one); elsewhere two renames (old away, new in), with the folder absent
    for the instant between. The temporary folder is named ``.{name}.partial-{pid}-{id}``; one
    left by a killed process is removed by the next run into the same folder. If the block raises,
    the temporary folder is deleted and ``folder`` is untouched.
    """
    path = check_output_folder(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    tmp = path.parent / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        check_output_folder(path)  # nothing foreign appeared meanwhile
        if not path.exists():
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp)  # now the previous folder
        else:
            old = path.parent / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        _fsync(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_abandoned(path: Path) -> None:
    """Delete temporary folders of ``path`` whose process is gone (a run killed mid-write)."""
    for entry in path.parent.glob(f".{path.name}.partial-*"):
        pid = entry.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: some filesystems refuse a folder fsync
        fsync_path(path)


def _fsync_tree(folder: Path) -> None:
    """Flush the files and the folder to disk before they are renamed into place."""
    for entry in folder.iterdir():
        if entry.is_file():
            _fsync(entry)
    _fsync(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]  # fmt: skip
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # old kernel or file system
        return False
    raise OSError(err, os.strerror(err), str(b))


def format_metric(name: str, value: Any) -> str:
    """A metric as the table shows it: percentages for return-like figures, "n/a" when undefined."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    number = to_json_float(value)
    if number is None:
        return "n/a"
    if name.startswith("n_"):
        return f"{number:,.0f}"
    if name in PERCENT_METRICS:
        return f"{number:.2%}"
    return f"{number:,.3f}"


def _json_value(value: Any) -> Any:
    """A metrics value JSON can hold: numbers as finite floats or None, strings and bools as is,
    mappings and lists item by item."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, int):
        return value
    return to_json_float(value)


def _figure_html(fig: go.Figure, div_id: str, *, first: bool) -> str:
    height = int(fig.layout.height or 400)
    return pio.to_html(
        fig,
        include_plotlyjs=first,  # inline plotly.js once; later charts reuse it
        full_html=False,
        div_id=div_id,
        default_height=f"{height}px",
        config={"displaylogo": False},
    )


def _layout(fig: go.Figure, y_title: str, *, percent: bool = False) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=400,
        margin={"l": 60, "r": 20, "t": 20, "b": 40},
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15},
        yaxis={"title": y_title, "tickformat": ".0%" if percent else None},
    )
    return fig


def _empty(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _equity_figure(equity: pd.Series, benchmark: pd.Series | None) -> go.Figure:
    fig = go.Figure(go.Scatter(x=equity.index, y=equity.to_numpy(), name="portfolio"))
    if benchmark is not None and not equity.empty:
        aligned = align_benchmark(benchmark, equity.index)
        start = aligned.first_valid_index()
        if start is not None and aligned[start] != 0:
            rebased = aligned / aligned[start] * equity[start]
            fig.add_trace(go.Scatter(x=rebased.index, y=rebased.to_numpy(), name="benchmark"))
    return _layout(fig, "value")


def _drawdown_figure(equity: pd.Series) -> go.Figure:
    drawdown = equity / equity.cummax() - 1.0
    fig = go.Figure(
        go.Scatter(x=drawdown.index, y=drawdown.to_numpy(), name="drawdown", fill="tozeroy")
    )
    return _layout(fig, "below peak", percent=True)


def holdings_table(weights: pd.DataFrame, top: int = TOP_HOLDINGS) -> pd.DataFrame:
    """Weights with the ``top`` symbols by average weight and the rest summed into "other".

    Keeps the chart readable and the file small for wide universes (50+ symbols).
    """
    weights = weights.fillna(0.0).sort_index()
    if weights.shape[1] <= top:
        return weights
    keep = weights.mean().sort_values(ascending=False).index[:top]
    out = weights[keep].copy()
    out["other"] = weights.drop(columns=keep).sum(axis=1)
    return out


def _holdings_figure(weights: pd.DataFrame | None) -> go.Figure:
    fig = go.Figure()
    if weights is None or weights.empty:
        return _layout(_empty(fig, "no holdings recorded"), "weight", percent=True)
    for symbol, column in holdings_table(weights).items():
        fig.add_trace(
            go.Scatter(
                x=column.index,
                y=column.round(5).to_numpy(),
                name=str(symbol),
                stackgroup="weights",
                mode="lines",
                line={"width": 0.5},
            )
        )
    return _layout(fig, "weight of equity", percent=True)


def monthly_turnover(trades: pd.DataFrame, equity: pd.Series) -> pd.Series:
    """One-way turnover per month: traded value / 2 / mean equity of the month.

    The same rule as the ``turnover`` metric, so a year of months adds up to the annual figure.
    """
    months = equity.groupby(equity.index.to_period("M")).mean()
    if trades.empty:
        return pd.Series(0.0, index=months.index)
    dates = pd.to_datetime(trades["date"])
    traded = trades["value"].abs().groupby(dates.dt.to_period("M").to_numpy()).sum()
    return (traded.reindex(months.index, fill_value=0.0) / 2.0 / months).fillna(0.0)


def _turnover_figure(trades: pd.DataFrame, equity: pd.Series) -> go.Figure:
    if equity.empty:
        return _layout(_empty(go.Figure(), "no equity recorded"), "turnover", percent=True)
    turnover = monthly_turnover(trades, equity)
    x = turnover.index.to_timestamp()
    fig = go.Figure(go.Bar(x=x, y=turnover.to_numpy(), name="one-way turnover"))
    return _layout(fig, "traded / 2 / equity", percent=True)


__all__ = [
    "CHART_IDS",
    "OUTPUT_FILES",
    "TOP_HOLDINGS",
    "check_output_folder",
    "format_metric",
    "holdings_table",
    "monthly_turnover",
    "staged_folder",
    "write_outputs",
    "write_report",
]
