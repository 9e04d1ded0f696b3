"""Drift: realised returns join matured predictions only; rolling error and IC per symbol."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from sentinel.db import ModelRecord
from sentinel.ml.drift import drift_report, update_realized_returns


def _hand_return(closes, d, horizon=14):
    window = closes[closes.index <= d + timedelta(days=horizon)]
    return window.iloc[-1] / closes[closes.index <= d].iloc[-1] - 1.0


@pytest.fixture
def predictions(demo_store):
    """Two symbols, the last 60 trading days: A predicts its future exactly, B the opposite."""
    a, b = (s.symbol for s in demo_store.market.securities()[:2])
    days = demo_store.market.trading_days()[-60:]
    last = days[-1]
    rows = []
    for sym, sign in ((a, 1.0), (b, -1.0)):
        closes = demo_store.market.get_prices(sym)["close"]
        for d in days:
            ts = pd.Timestamp(d)
            truth = _hand_return(closes, ts) if d + timedelta(days=14) <= last else 0.0
            rows.append(
                {"symbol": sym, "date": d, "predicted_return": sign * truth, "blended_score": 0.5,
                 "blend_ratio": 0.3, "model_mode": "walk_forward"}
            )  # fmt: skip
    demo_store.signals.upsert_ml_predictions(rows)
    return demo_store, a, b, days


def test_realised_return_only_after_horizon(predictions):
    store, a, _, days = predictions
    n = update_realized_returns(store, horizon_days=14)
    rows = store.signals.get_ml_predictions()
    last = days[-1]
    matured = rows["date"].map(lambda d: d + timedelta(days=14) <= last)
    assert n == int(matured.sum()) > 0
    assert rows.loc[~matured, "realized_return"].isna().all()
    closes = store.market.get_prices(a)["close"]
    for _, r in rows[matured & (rows["symbol"] == a)].iloc[[0, -1]].iterrows():
        assert r["realized_return"] == pytest.approx(_hand_return(closes, pd.Timestamp(r["date"])))
    # every other column survived the write-back
    assert (rows["blended_score"] == 0.5).all() and (rows["model_mode"] == "walk_forward").all()
    assert update_realized_returns(store, horizon_days=14) == 0  # nothing left to fill


def test_drift_report_per_symbol_and_aggregate(predictions):
    store, a, b, _ = predictions
    update_realized_returns(store, horizon_days=14)
    store.records.upsert_model_record(
        ModelRecord(
            symbol=a,
            trained_at=datetime(2017, 1, 1, tzinfo=UTC),
            training_samples=100,
            metrics={"validation_rmse": 0.03, "validation_ic": 0.1},
        )  # fmt: skip
    )
    rep = drift_report(store, window_days=30)
    live = rep["live"]
    assert live["per_symbol"][a]["mae"] == pytest.approx(0.0, abs=1e-12)
    assert live["per_symbol"][a]["ic"] == pytest.approx(1.0)
    assert live["per_symbol"][b]["ic"] == pytest.approx(-1.0)
    assert live["per_symbol"][b]["rmse"] > 0
    matured = store.signals.get_ml_predictions().dropna(subset=["realized_return"])
    in_window = matured[matured["date"] > matured["date"].max() - timedelta(days=30)]
    assert live["n_predictions"] == len(in_window)
    assert rep["validation"]["per_symbol"][a]["rmse"] == 0.03
    assert rep["validation"]["aggregate"]["avg_validation_ic"] == pytest.approx(0.1)
    assert drift_report(store, model_mode="current")["live"]["n_predictions"] == 0
    json.dumps(rep)  # ready for the API: no NaN, no numpy types
