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

from engine import tearsheet
from engine.metrics import align_benchmark, to_json_float
from engine.tearsheet import figures as tearsheet_figures
from engine.tearsheet import stats as tearsheet_stats
from engine.tearsheet.labels import (
    figure_warnings,
    format_value,
    label_of,
    merged_warnings,
    metric_rows,
)
from sentinel.errors import ConfigError
from sentinel.files import fsync_path

#: Holdings chart: symbols kept by average weight; the rest are summed into "other".
TOP_HOLDINGS = tearsheet_figures.TOP_HOLDINGS

#: Every chart of the report, in page order (each a div with class "chart" and this id).
CHART_IDS = tearsheet.CHART_IDS

#: What a run's output folder may hold; a folder with anything else is not replaced.
OUTPUT_FILES = (
    "metrics.json", "trades.csv", "equity.csv", "report.html", "predictions.csv",
    "round_trips.csv",
)  # fmt: skip

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222;
  padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc;
  padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
nav a { margin-right: .9rem; }
p.note { color: #555; margin: .3rem 0 .8rem; }
.warnings { background: #fff3cd; border: 2px solid #d39e00; border-radius: 4px;
  padding: .5rem 1rem; margin: 1rem 0; }
.warnings strong { color: #8a6100; }
.metric-groups { display: flex; flex-wrap: wrap; gap: 1rem 2.5rem; align-items: flex-start; }
table { border-collapse: collapse; font-size: .92rem; }
table caption { text-align: left; font-weight: 600; padding: .3rem 0; }
td, th { border-bottom: 1px solid #ddd; padding: .25rem .7rem; text-align: left; }
td.value, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.table-wrap { overflow-x: auto; margin: .8rem 0 1.2rem; }
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
<nav><a href="#metrics">Metrics</a>{% for s in sections %}
<a href="#{{ s.anchor }}">{{ s.heading }}</a>{% endfor %}
{% for heading, _ in extra %}<a href="#extra-{{ loop.index }}">{{ heading }}</a>
{% endfor %}</nav>
<section id="metrics"><h2>Metrics</h2>
<div class="metric-groups">
{% for group, rows in metrics %}<table class="metrics">
<caption>{{ group }}</caption>
{% for label, value, key in rows %}<tr title="{{ key }}"><td>{{ label }}</td>
<td class="value">{{ value }}</td></tr>
{% endfor %}</table>
{% endfor %}</div></section>
{% for s in sections %}
<section id="{{ s.anchor }}"><h2>{{ s.heading }}</h2>
<p class="note">{{ s.note }}</p>
{% for chart in s.charts %}{{ chart }}
{% endfor %}{% for t in s.tables %}<div class="table-wrap"><table class="data">
<caption>{{ t.caption }}</caption>
{% if t.columns %}<tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>{% endif %}
{% for row in t.rows %}<tr>{% for cell in row %}
<td{% if loop.index > 1 %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endfor %}</section>{% endfor %}
{% for heading, fragment in extra %}
<section id="extra-{{ loop.index }}"><h2>{{ heading }}</h2>
{{ fragment }}
</section>{% endfor %}
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
    cash: pd.Series | None = None,
    sectors: Mapping[str, str | None] | None = None,
    capital: float | None = None,
    sections: Sequence[tuple[str, str]] = (),
    round_trips: pd.DataFrame | None = None,
) -> Path:
    """Write one self-contained ``report.html`` (works offline) and return its path.

    The page: a warnings banner (above everything, because a figure computed with look-ahead
    must not be read without it), the metrics with human labels and units, then the tear sheet
    (:func:`engine.tearsheet.build_sections`: performance, returns by period, rolling risk,
    holdings, trading and costs, attribution and trades), then ``sections``: (heading, trusted
    HTML fragment) pairs other parts of the engine add, rendered as given. Warnings for extreme
    turnover or costs (:func:`engine.tearsheet.labels.figure_warnings`, costs measured against
    ``capital``, default the first equity value) are added to ``warnings`` unless already there.
    """
    equity = equity.dropna().sort_index().astype(float)
    if capital is None and not equity.empty:
        capital = float(equity.iloc[0])
    built = tearsheet.build_sections(
        equity=equity, benchmark=benchmark, weights=weights, trades=trades, cash=cash,
        sectors=sectors, round_trips=round_trips, capital=capital,
    )  # fmt: skip
    first = True
    rendered = []
    for section in built:
        charts = []
        for div_id, chart_title, fig in section.charts:
            fig.update_layout(
                title={"text": chart_title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
                margin={"t": 50},
            )
            charts.append(Markup(_figure_html(fig, div_id, first=first)))
            first = False
        anchor = section.heading.lower().replace(" ", "-")
        rendered.append({"heading": section.heading, "note": section.note, "anchor": anchor,
                         "charts": charts, "tables": section.tables})  # fmt: skip
    html = _ENV.from_string(_TEMPLATE).render(
        title=title,
        warnings=merged_warnings(list(warnings), figure_warnings(metrics, capital)),
        metrics=metric_rows(metrics),
        sections=rendered,
        extra=[(heading, Markup(fragment)) for heading, fragment in sections],
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
    sectors: Mapping[str, str | None] | None = None,
    capital: float | None = None,
    sections: Sequence[tuple[str, str]] = (),
) -> dict[str, Path]:
    """Write metrics.json, trades.csv, equity.csv, round_trips.csv and report.html into
    ``folder``, all or nothing.

    The files are written into a temporary folder beside ``folder``, which then replaces it whole
    (:func:`staged_folder`): a run killed at any moment leaves the previous complete folder or the
    new complete one, never a mix. ``tables`` adds CSV files by name (``predictions`` ->
    predictions.csv). ``equity.csv`` has the columns date, equity, then cash and benchmark when
    given; the benchmark is its close aligned onto the equity dates (forward-filled, as in the
    metrics). ``round_trips.csv`` lists the closed positions matched first in, first out
    (:func:`engine.tearsheet.stats.round_trips`). ``sectors``, ``capital`` and ``sections`` go to
    :func:`write_report`. Returns the final paths by name: ``metrics``, ``trades``, ``equity``,
    ``round_trips``, ``report`` and one per table.
    """
    folder = _absolute(folder)
    for name in tables or {}:
        if f"{name}.csv" not in OUTPUT_FILES:
            raise ValueError(f"not an output table: {name!r}")
    with staged_folder(folder) as tmp:
        names = _write_files(
            tmp, metrics=metrics, trades=trades, equity=equity, benchmark=benchmark,
            weights=weights, cash=cash, title=title, warnings=warnings, config_text=config_text,
            tables=tables or {}, sectors=sectors, capital=capital, sections=sections,
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
    sectors: Mapping[str, str | None] | None,
    capital: float | None,
    sections: Sequence[tuple[str, str]],
) -> dict[str, str]:
    paths = {
        "metrics": folder / "metrics.json",
        "trades": folder / "trades.csv",
        "equity": folder / "equity.csv",
        "round_trips": folder / "round_trips.csv",
        "report": folder / "report.html",
    }
    safe = {str(k): _json_value(v) for k, v in metrics.items()}
    paths["metrics"].write_text(
        json.dumps(safe, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    trades.to_csv(paths["trades"], index=False)
    trips = tearsheet_stats.round_trips(trades)
    trips.to_csv(paths["round_trips"], index=False, date_format="%Y-%m-%d")

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
        cash=cash,
        sectors=sectors,
        capital=capital,
        sections=sections,
        round_trips=trips,
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
    """A metric as the report shows it: in its unit (:mod:`engine.tearsheet.labels`), "n/a" when
    undefined."""
    return format_value(to_json_float(value) if isinstance(value, float) else value,
                        label_of(name)[1])  # fmt: skip


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
    """The figure as a div (class "chart", id ``div_id``); plotly.js inlined with the first."""
    height = int(fig.layout.height or 400)
    html = pio.to_html(
        fig,
        include_plotlyjs=first,  # inline plotly.js once; later charts reuse it
        full_html=False,
        div_id=div_id,
        default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True},
    )
    return html.replace('class="plotly-graph-div"', 'class="plotly-graph-div chart"', 1)


def holdings_table(weights: pd.DataFrame, top: int = TOP_HOLDINGS) -> pd.DataFrame:
    """Weights with the ``top`` symbols by average weight and the rest summed into "other"."""
    return tearsheet_stats.top_weights(weights, top)


monthly_turnover = tearsheet_stats.monthly_turnover


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
