"""``/api/ml/*``: status with retrain progress, retraining, per-symbol models, performance.

Payloads are the notes' shapes, built by :mod:`sentinel.ml.status` and :mod:`sentinel.ml.drift`
(the CLI prints the same). Retraining goes through the app's
:class:`~sentinel.retrain.RetrainManager`: one pass at a time, a second request is a 409.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from sentinel.api._cache import records_fingerprint, status_fingerprint
from sentinel.api._json import dumps
from sentinel.api.deps import (
    EffectiveSettingsDep,
    RetrainDep,
    StoreDep,
    SymbolDep,
    TokenDep,
)
from sentinel.api.routes.ml_performance import find_evaluation
from sentinel.ml.drift import drift_report
from sentinel.ml.model_files import POOLED, ModelStore
from sentinel.ml.status import (
    files_fingerprint,
    ml_models,
    ml_status,
    model_entry,
    model_row,
)
from sentinel.retrain import RetrainBusyError, RetrainManager

router = APIRouter(prefix="/api/ml", tags=["ml"])

_WRITE = {
    401: {"description": "missing token"},
    403: {"description": "wrong token"},
    409: {"description": "a retrain is already running"},
}
Background = Annotated[
    bool, Query(description="Answer 202 at once; progress in GET /api/ml/status.")
]


@router.get("/status", summary="ML settings, model counts, average validation, retrain progress")
async def get_status(
    store: StoreDep, settings: EffectiveSettingsDep, retrain: RetrainDep, request: Request
):
    """Cached while the records, the sample count and the settings are unchanged (UI polling)."""
    key = (*status_fingerprint(store), *settings.ml_values().values(),
           files_fingerprint(settings.models_dir))  # fmt: skip
    figures = request.app.state.status_cache.get(key, lambda: ml_status(store, settings))
    return {**figures, "retrain": retrain.status()}


def _retrain(
    retrain: RetrainManager, symbols: list[str] | None, background: bool, response: Response
) -> dict[str, Any]:
    try:
        if background:
            response.status_code = status.HTTP_202_ACCEPTED
            return {"status": "started", "retrain": retrain.start(symbols)}
        return retrain.run(symbols)
    except RetrainBusyError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post(
    "/retrain", dependencies=[TokenDep], responses=_WRITE, summary="Retrain every eligible symbol"
)
def retrain_all(retrain: RetrainDep, response: Response, background: Background = False):
    """Train every symbol with at least ``ml_min_samples_per_symbol`` samples.

    Answers the notes' completed shape when done, or 202 at once with ``?background=true``.
    """
    return _retrain(retrain, None, background, response)


@router.post(
    "/retrain/{symbol}",
    dependencies=[TokenDep],
    responses={**_WRITE, 404: {"description": "unknown symbol"}},
    summary="Retrain one symbol",
)
def retrain_one(
    symbol: SymbolDep, retrain: RetrainDep, response: Response, background: Background = False
):
    return _retrain(retrain, [symbol], background, response)


@router.get("/models", summary="Every stored model (per symbol, and _pooled), figures, health")
async def list_models(
    store: StoreDep, settings: EffectiveSettingsDep, request: Request
) -> Response:
    """A stored pooled / hierarchical model is the row ``_pooled`` (``sentinel ml train
    --model``). Served from a cache of the rendered body while the records and the model files
    are unchanged. A model whose files fail their checks has ``status: broken`` and the reason in
    ``problem``; one whose record disagrees with its files, ``stale_record`` (figures from the
    files).

    Also answers ``If-None-Match`` with 304, so a polling UI downloads the list once per change.
    """
    cache = request.app.state.models_cache
    root = settings.models_dir
    key = (*records_fingerprint(store), files_fingerprint(root))
    body, etag = cache.get(key, lambda: dumps(ml_models(store, root)))
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    f"/models/{POOLED}",
    responses={404: {"description": "no pooled / hierarchical model stored"}},
    summary="The stored pooled / hierarchical model (ml.model): validation, baselines, span",
)
def get_pooled_model(store: StoreDep, settings: EffectiveSettingsDep):
    """The row ``GET /api/ml/models`` lists first as ``_pooled``, with its metrics. Declared
    before ``/models/{symbol}``, whose symbol check (``_pooled`` can never be a symbol) would
    refuse it."""
    rec = store.records.get_model_record(POOLED)
    ms = ModelStore(settings.models_dir)
    if rec is None and not ms.has_pooled():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "no pooled model stored: sentinel ml train --model pooled|hierarchical",
        )
    row = model_row(POOLED, rec, ms.verify_pooled())
    shown = row["record"]
    return {**model_entry(shown, row["status"], row["problem"]), "metrics": shown.metrics or {}}


@router.get(
    "/models/{symbol}",
    responses={404: {"description": "unknown symbol, or no model yet"}},
    summary="One symbol's model: validation, baselines, training span",
)
def get_model(symbol: SymbolDep, store: StoreDep, settings: EffectiveSettingsDep):
    rec = store.records.get_model_record(symbol)
    if rec is None:
        n = len(
            store.signals.get_training_samples(
                symbol, horizon_days=settings.ml_prediction_horizon_days
            )
        )
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no model for {symbol} yet: {n} training samples, "
            f"{settings.ml_min_samples_per_symbol} needed (ml_min_samples_per_symbol); "
            "until then it uses the wavelet score alone",
        )
    row = model_row(symbol, rec, ModelStore(settings.models_dir).verify(symbol))
    shown = row["record"]
    return {**model_entry(shown, row["status"], row["problem"]), "metrics": shown.metrics or {}}


@router.get("/performance", summary="Validation metrics and live drift of matured predictions")
def get_performance(
    store: StoreDep,
    settings: EffectiveSettingsDep,
    window_days: Annotated[int, Query(ge=1, le=3650)] = 90,
    model_mode: Literal["walk_forward", "current"] | None = None,
):
    body = drift_report(
        store, window_days=window_days, horizon_days=settings.ml_prediction_horizon_days,
        model_mode=model_mode,
    )  # fmt: skip
    # the latest `sentinel ml evaluate` summary (rank IC per score and baseline), if any
    body["cross_sectional"] = find_evaluation(store, None, per_day=False)
    return body
