"""Stored backtest runs and sweeps (read only): summaries, and equity curves for the charts.

Lists carry no curves (a run's equity is thousands of rows); ``/api/runs/{id}`` and
``/api/sweeps/{sweep_id}`` return them as columns (``{"date": [...], "equity": [...]}``), the form
a chart takes directly.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from sentinel.api._cache import runs_fingerprint
from sentinel.api._json import dumps
from sentinel.api.deps import StoreDep
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
    """What a list shows: identity, the blend ratio and mode, and the metrics."""
    ml = (run.config or {}).get("ml", {})
    return {
        "id": run.id,
        "name": run.name,
        "config_hash": run.config_hash,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "sweep_id": run.sweep_id,
        "start": (run.config or {}).get("start"),
        "end": (run.config or {}).get("end"),
        "blend_ratio": ml.get("blend_ratio"),
        "ml_mode": ml.get("mode"),
        "metrics": run.metrics,
    }


def detail(run: BacktestRun) -> dict[str, Any]:
    trades = columns(run.trades_csv)
    return {
        **summary(run),
        "config": run.config,
        "equity": columns(run.equity_csv),
        "n_trades": len(next(iter(trades.values()), [])),
    }


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
        return detail(store.records.get_backtest_run(run_id))
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


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
    return {"sweep_id": sweep_id, "runs": [detail(r) for r in runs]}
