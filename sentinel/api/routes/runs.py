"""Stored backtest runs and sweeps (read only): summaries, equity curves, their reports.

Lists carry no curves (a run's equity is thousands of rows); ``/api/runs/{id}`` and
``/api/sweeps/{sweep_id}`` return them as columns (``{"date": [...], "equity": [...],
"benchmark": [...]}``), the form a chart takes directly. ``/api/runs/{id}/report`` serves the
report.html (a sweep point: sweep.html) of the output folder the run recorded, nothing else.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from sentinel.api._cache import runs_fingerprint
from sentinel.api._json import dumps
from sentinel.api.deps import StoreDep
from sentinel.api.run_labels import ml_label, report_file, strategy_label, universe_label
from sentinel.db import BacktestRun
from sentinel.errors import NotFoundError

router = APIRouter(prefix="/api", tags=["runs"])

#: The largest row id the databases store (a signed 64-bit integer); above it a 422, not a 500.
MAX_ID = 2**63 - 1
#: Sweep ids are ``{name}-{hash}``; anything with a slash or a control character is refused.
SWEEP_PATTERN = r"^[^/\\\x00-\x1f]{1,64}$"


def _float(v: str) -> float | str | None:
    if v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return v


def columns(text: str) -> dict[str, list[Any]]:
    """A stored CSV as columns; numbers as floats, the ``date`` column as text."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return {}
    cols: dict[str, list[Any]] = {h: [] for h in header}
    for row in reader:
        for h, v in zip(header, row, strict=False):
            cols[h].append(v if h == "date" else _float(v))
    return cols


def summary(run: BacktestRun) -> dict[str, Any]:
    """What a list shows: identity, period, strategy, universe, ML mode, metrics, report link."""
    cfg = run.config or {}
    ml = cfg.get("ml") or {}
    report = report_file(cfg, bool(run.sweep_id))
    return {
        "id": run.id,
        "name": run.name,
        "config_hash": run.config_hash,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "sweep_id": run.sweep_id,
        "start": cfg.get("start"),
        "end": cfg.get("end"),
        "strategy": strategy_label(cfg),
        "universe": universe_label(cfg),
        "benchmark": cfg.get("benchmark"),
        "blend_ratio": ml.get("blend_ratio"),
        "ml_mode": ml_label(cfg),
        "metrics": run.metrics,
        "report_url": f"/api/runs/{run.id}/report" if report else None,
        "report_kind": report.stem if report else None,
    }


def detail(run: BacktestRun, store: Any = None) -> dict[str, Any]:
    """A run with its equity curve and, beside it, the benchmark's close.

    Rows stored before the benchmark was kept with the curve take it from the store's benchmark
    series over the run's dates (``store`` given), the series the run was measured against.
    """
    trades = columns(run.trades_csv)
    equity = columns(run.equity_csv)
    if "benchmark" not in equity and store is not None and equity.get("date"):
        equity["benchmark"] = _stored_benchmark(store, run, equity["date"])
    out = summary(run)
    if out["benchmark"] is None and store is not None:
        out["benchmark"] = store.market.market_symbol()  # what the run used when none was named
    return {
        **out,
        "config": run.config,
        "equity": equity,
        "n_trades": len(next(iter(trades.values()), [])),
    }


def _stored_benchmark(store: Any, run: BacktestRun, dates: list[str]) -> list[float | None]:
    symbol = (run.config or {}).get("benchmark") or store.market.market_symbol()
    if not symbol:
        return [None] * len(dates)
    days = [date.fromisoformat(d[:10]) for d in dates]
    bars = store.market.get_benchmark(symbol, start_date=days[0], end_date=days[-1])
    if bars.empty:
        return [None] * len(dates)
    close = {pd_day.date(): float(v) for pd_day, v in bars["close"].items()}
    return [close.get(d) for d in days]


@router.get("/runs", summary="Stored backtest runs (newest last)")
async def list_runs(
    store: StoreDep,
    request: Request,
    sweep_id: Annotated[str | None, Query(pattern=SWEEP_PATTERN)] = None,
) -> Response:
    """The rendered list is cached while no run is added (one aggregate query per request).

    Loading the runs (whole rows) happens in the thread pool, and only when the list changed.
    """
    cache = request.app.state.runs_cache
    key = (sweep_id, *runs_fingerprint(store))
    body = cache.peek(key)
    if body is None:
        body = await run_in_threadpool(
            lambda: cache.get(key, lambda: dumps(_runs_payload(store, sweep_id)))[0]
        )
    return Response(body, media_type="application/json")


def _runs_payload(store: Any, sweep_id: str | None) -> dict[str, Any]:
    return {"runs": [summary(r) for r in store.records.list_backtest_runs(sweep_id)]}


@router.get(
    "/runs/{run_id}",
    responses={404: {"description": "no such run"}},
    summary="One run with its config, metrics and equity curve",
)
def get_run(run_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep):
    try:
        return detail(store.records.get_backtest_run(run_id), store)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


#: The report is the run's own HTML: shown sandboxed (an opaque origin: it cannot read the UI's
#: stored token or call the API as the page) and with no network access.
REPORT_CSP = (
    "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)


@router.get(
    "/runs/{run_id}/report",
    response_class=FileResponse,
    responses={404: {"description": "no such run, or its report is not in its folder"}},
    summary="The run's HTML report (a sweep point: the sweep's) from its recorded folder",
)
def get_report(run_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep) -> FileResponse:
    try:
        run = store.records.get_backtest_run(run_id)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    path = report_file(run.config or {}, bool(run.sweep_id))
    if path is None:
        folder = (run.config or {}).get("output") or "no folder recorded"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"run {run_id} has no report file ({folder})"
        )
    return FileResponse(
        path, media_type="text/html",
        headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"},
    )  # fmt: skip


@router.get("/sweeps", summary="Stored runs grouped by sweep")
def list_sweeps(store: StoreDep):
    groups: dict[str, list[BacktestRun]] = defaultdict(list)
    for r in store.records.list_backtest_runs():
        if r.sweep_id:
            groups[r.sweep_id].append(r)
    return {
        "sweeps": [
            {
                "sweep_id": sid,
                "name": runs[0].name,
                "created_at": runs[0].created_at.isoformat() if runs[0].created_at else None,
                "n_runs": len(runs),
                "runs": [summary(r) for r in runs],
            }
            for sid, runs in groups.items()
        ]
    }


@router.get(
    "/sweeps/{sweep_id}",
    responses={404: {"description": "no such sweep"}},
    summary="One sweep's runs with their equity curves (for an overlay chart)",
)
def get_sweep(sweep_id: Annotated[str, Path(pattern=SWEEP_PATTERN)], store: StoreDep):
    runs = store.records.list_backtest_runs(sweep_id)
    if not runs:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sweep with id {sweep_id!r}")
    return {"sweep_id": sweep_id, "runs": [detail(r, store) for r in runs]}
