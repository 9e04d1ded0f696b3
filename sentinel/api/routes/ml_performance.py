"""``GET /api/ml/performance/cross_sectional``: the cross-sectional evaluation of a run's scores.

Serves the ``ml_eval.json`` that ``sentinel ml evaluate`` writes (per score: mean rank IC,
ICIR, Newey-West t, quantile returns, spread, turnover, hit rate, verdict; per day: the ICs).
The file is looked up only under fixed names beside a stored run's recorded output folder
(``<output>/ml_eval.json``, then ``<output>-ml_eval/ml_eval.json``, the command's default), as a
regular file whose real path stays in that folder and at most :data:`MAX_BYTES` long: the path
never comes from the request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from sentinel.api.deps import StoreDep

router = APIRouter(prefix="/api/ml", tags=["ml"])

EVAL_FILE = "ml_eval.json"
#: Largest evaluation file served (a 10-year weekly run of 8 scores is well under 2 MB).
MAX_BYTES = 20_000_000
#: How many of the most recent runs are searched when no run is named.
SEARCH_RUNS = 200
MAX_ID = 2**63 - 1


def eval_file(config: Any) -> Path | None:
    """The evaluation file beside a run's recorded output folder, if one is there."""
    folder = config.get("output") if isinstance(config, dict) else None
    if not isinstance(folder, str) or not folder or "\x00" in folder:
        return None
    root = Path(folder)
    if not root.is_absolute():
        return None
    for place in (root, Path(f"{root}-ml_eval")):
        try:
            real = place.resolve(strict=True)
            path = (real / EVAL_FILE).resolve(strict=True)
        except OSError:
            continue
        if path.parent == real and path.is_file() and path.stat().st_size <= MAX_BYTES:
            return path
    return None


def _configs(store: Any, run_id: int | None) -> list[tuple[int, Any]]:
    if run_id is not None:
        rows = store.db.rows("SELECT id, config FROM backtest_runs WHERE id = :i", i=run_id)
    else:
        rows = store.db.rows(
            f"SELECT id, config FROM backtest_runs ORDER BY id DESC LIMIT {SEARCH_RUNS}"
        )
    return [(int(i), json.loads(c) if isinstance(c, str) else c) for i, c in rows]


def find_evaluation(store: Any, run_id: int | None, *, per_day: bool) -> dict[str, Any] | None:
    """The evaluation of run ``run_id`` (or of the most recent run that has one), or None."""
    for rid, config in _configs(store, run_id):
        path = eval_file(config)
        if path is None:
            continue
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(body, dict):
            continue
        if not per_day:
            body.pop("per_day", None)
        return {"run_id": rid, **body}
    return None


@router.get(
    "/performance/cross_sectional",
    summary="Cross-sectional rank IC of each score and the baselines (from ml evaluate)",
    responses={404: {"description": "no evaluation found for the run (or for any run)"}},
)
def cross_sectional(
    store: StoreDep,
    run_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A stored run (default: the latest)")
    ] = None,
    per_day: Annotated[bool, Query(description="Include the per-day rows")] = True,
) -> dict[str, Any]:
    """The evaluation of a run (or of the most recent run that has one), per-day rows included.

    ``GET /api/ml/performance`` carries the same summary under ``cross_sectional``.
    """
    if run_id is not None and not _configs(store, run_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no backtest run with id {run_id}")
    body = find_evaluation(store, run_id, per_day=per_day)
    if body is None:
        where = f"run {run_id}" if run_id is not None else "any stored run"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no ML evaluation found for {where}: run `sentinel ml evaluate CONFIG` on its config",
        )
    return body
