"""Live drift: stored predictions against the returns that followed, once the horizon has passed.

The realised return of a prediction made on day D is the label of a training sample dated D:
close of the last trading day on or before D + horizon (calendar days) / close on D - 1. It is
only filled in once that close is final (a bar exists on or after D + horizon), so a figure never
changes after it is written. :func:`drift_report` then compares prediction and outcome over a
trailing window, per symbol and in aggregate, next to the validation figures of the model records:
the payload of ``GET /api/ml/performance``.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from sentinel.db import Store
from sentinel.ml.status import record_metrics
from sentinel.ml.validation import aggregate_metrics, regression_metrics


def realised_returns(
    closes: pd.Series, dates: pd.DatetimeIndex, horizon_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Realised return and the date it became known for each prediction date (NaN/NaT if not yet).

    ``closes`` is indexed by trading date (ascending). A prediction date without a bar uses the
    last close before it, as the prediction did.
    """
    idx = closes.index
    c = closes.to_numpy(dtype="float64")
    out = np.full(len(dates), np.nan)
    known = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[D]")
    if len(idx) == 0:
        return out, known
    last = idx[-1]
    i0 = idx.searchsorted(dates, side="right") - 1
    ends = dates + pd.Timedelta(days=horizon_days)
    j = idx.searchsorted(ends, side="right") - 1
    ok = (i0 >= 0) & (ends <= last) & (j > i0)
    out[ok] = c[j[ok]] / c[i0[ok]] - 1.0
    known[ok] = idx[j[ok]].to_numpy().astype("datetime64[D]")
    return out, known


def update_realized_returns(
    store: Store, *, horizon_days: int = 14, symbols: list[str] | None = None
) -> int:
    """Fill ``realized_return`` of stored predictions whose horizon has passed; returns the count.

    Uses only the existing gateway methods: the rows are read with ``get_ml_predictions`` and
    written back whole with ``upsert_ml_predictions`` (keyed by symbol and date). Bounded by the
    store's simulation date like every read.
    """
    preds = store.signals.get_ml_predictions()
    if preds.empty:
        return 0
    todo = preds[preds["realized_return"].isna()]
    if symbols is not None:
        todo = todo[todo["symbol"].isin(symbols)]
    written = 0
    for sym, g in todo.groupby("symbol", sort=True):
        prices = store.market.get_prices(str(sym))
        if prices.empty:
            continue
        closes = prices["close"]
        closes = closes[np.isfinite(closes.to_numpy()) & (closes.to_numpy() > 0)]
        dates = pd.DatetimeIndex(pd.to_datetime(g["date"].astype(str)))
        realised, _ = realised_returns(closes, dates, horizon_days)
        rows = []
        for rec, r in zip(g.to_dict("records"), realised, strict=True):
            if math.isfinite(r):
                # NaN back to NULL: PostgreSQL would store a float NaN as a number
                rec = {k: None if isinstance(v, float) and math.isnan(v) else v
                       for k, v in rec.items()}  # fmt: skip
                rec["realized_return"] = float(r)
                rows.append(rec)
        written += store.signals.upsert_ml_predictions(rows)
    return written


def _ic_by_date(frame: pd.DataFrame) -> float | None:
    """Mean cross-sectional rank IC over dates with at least 3 symbols (the usual live IC)."""
    ics = []
    for _, g in frame.groupby("date"):
        if len(g) >= 3:
            m = regression_metrics(g["realized_return"], g["predicted_return"])
            if m["ic"] is not None:
                ics.append(m["ic"])
    return float(np.mean(ics)) if ics else None


def drift_report(
    store: Store,
    *,
    window_days: int = 90,
    as_of: date | None = None,
    horizon_days: int = 14,
    model_mode: str | None = None,
) -> dict[str, Any]:
    """``GET /api/ml/performance``: validation figures of the models and live drift.

    Live figures cover matured predictions (realised return known) dated within the last
    ``window_days`` before the latest matured one (or before ``as_of``). ``model_mode`` keeps only
    rows of one mode (``walk_forward`` or ``current``; rows of the notes' ``current`` mode were
    predicted by a model that saw their future, so their drift flatters).
    """
    preds = store.signals.get_ml_predictions(end=as_of)
    records = store.records.get_model_records()
    validation = {
        "aggregate": aggregate_metrics(record_metrics(r) for r in records),
        "per_symbol": {
            r.symbol: {
                k: (r.metrics or {}).get(f"validation_{k}")
                for k in ("rmse", "mae", "r2", "ic", "hit_rate")
            }
            for r in records
        },
    }
    live: dict[str, Any] = {"n_predictions": 0, "aggregate": None, "per_symbol": {}}
    out = {
        "as_of": None,
        "window_days": int(window_days),
        "horizon_days": int(horizon_days),
        "model_mode": model_mode,
        "validation": validation,
        "live": live,
    }
    if preds.empty:
        return out
    m = preds.dropna(subset=["predicted_return", "realized_return"])
    if model_mode is not None:
        m = m[m["model_mode"] == model_mode]
    if m.empty:
        return out
    m = m.assign(date=pd.to_datetime(m["date"].astype(str)))
    end = m["date"].max() if as_of is None else pd.Timestamp(as_of)
    start = end - pd.Timedelta(days=window_days)
    w = m[(m["date"] > start) & (m["date"] <= end)]
    out["as_of"] = end.date().isoformat()
    if w.empty:
        return out
    live["n_predictions"] = int(len(w))
    live["window"] = [w["date"].min().date().isoformat(), w["date"].max().date().isoformat()]
    modes = w["model_mode"].fillna("none").value_counts()
    live["modes"] = {str(k): int(v) for k, v in modes.items()}
    agg = regression_metrics(w["realized_return"], w["predicted_return"])
    agg["ic_pooled"] = agg.pop("ic")
    agg["ic_by_date"] = _ic_by_date(w)
    agg["bias"] = float((w["predicted_return"] - w["realized_return"]).mean())
    live["aggregate"] = agg
    for sym, g in w.groupby("symbol", sort=True):
        met = regression_metrics(g["realized_return"], g["predicted_return"])
        met["bias"] = float((g["predicted_return"] - g["realized_return"]).mean())
        live["per_symbol"][str(sym)] = met
    return out
