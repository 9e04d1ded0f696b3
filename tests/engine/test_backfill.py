"""Backfill of ``ml_predictions``: resumable without a kill; walk-forward models as of each day."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

import sentinel.ml.training as training
from engine.backfill import backfill_predictions
from sentinel.ml.dataset import generate_samples
from sentinel.timeutil import end_of_day_ts

FAST = {"max_epochs": 2, "min_samples": 30, "retrain": "monthly", "blend_ratio": 0.5}


@pytest.fixture
def setup(demo_store):
    syms = [s.symbol for s in demo_store.market.securities()[:3]]
    generate_samples(demo_store, syms, horizon_days=14)
    days = demo_store.market.trading_days()[-70:-10]
    return demo_store, syms, days


def test_resumable_and_walk_forward_as_of_each_date(setup, monkeypatch):
    store, syms, days = setup
    calls: list[tuple[date | None, date, dict[str, int]]] = []
    real = training.train_as_of

    def spy(view, *, as_of, **kw):
        report = real(view, as_of=as_of, **kw)
        calls.append((view.day, as_of, dict(report.samples)))
        return report

    monkeypatch.setattr(training, "train_as_of", spy)
    mid = days[len(days) // 2]
    first = backfill_predictions(
        store, start=days[0], end=mid, every=5, symbols=syms, commit_every=3, **FAST
    )
    part = store.signals.get_ml_predictions()
    n_part_dates = len(store.market.trading_days(days[0], mid)[::5])
    assert first.rows_written == len(part) == 3 * n_part_dates

    second = backfill_predictions(
        store, start=days[0], end=days[-1], every=5, symbols=syms, commit_every=3, **FAST
    )
    rows = store.signals.get_ml_predictions()
    dates = store.market.trading_days(days[0], days[-1])[::5]
    assert second.rows_existing == len(part)
    assert second.rows_written == len(rows) - len(part) == 3 * (len(dates) - n_part_dates)
    assert not rows.duplicated(["symbol", "date"]).any()
    assert set(zip(rows["symbol"], rows["date"], strict=True)) == {
        (s, d) for s in syms for d in dates
    }
    # the resumed run did not rewrite what the first one wrote
    again = rows.set_index(["symbol", "date"]).loc[part.set_index(["symbol", "date"]).index]
    pd.testing.assert_frame_equal(again.reset_index(), part)

    # walk-forward: each row's model was trained as of a grid date on or before the row's date
    assert (rows["model_mode"] == "walk_forward").all()
    ml = rows[rows["predicted_return"].notna()]
    assert len(ml) > len(rows) // 2
    trained_on = pd.to_datetime(ml["model_id"].str.removeprefix("walk_forward:")).dt.date
    assert (trained_on <= ml["date"]).all()
    assert ml["regime_score"].notna().all() and ml["regime_dampening"].between(0.5, 1).all()
    assert (rows["predicted_at"] == [end_of_day_ts(d) for d in rows["date"]]).all()
    # ...through a simulation view bounded at that date, on exactly the samples known then
    assert len(calls) >= 2
    full = store.view(None).signals.get_training_samples()
    for sim_date, as_of, counts in calls:
        assert sim_date == as_of
        known = full[full["label_known_at"] <= pd.Timestamp(as_of)]
        assert counts == known.groupby("symbol").size().to_dict()
    assert {d for _, d, _ in calls} >= set(trained_on)


def test_ml_disabled_writes_wavelet_rows_with_reason(setup):
    store, syms, days = setup
    rep = backfill_predictions(
        store, start=days[-5], end=days[-1], symbols=syms, ml_enabled=False, blend_ratio=0.3
    )
    rows = store.signals.get_ml_predictions()
    assert rep.rows_written == len(rows) == 3 * 5
    assert (rows["fallback"] == "ml disabled").all()
    assert (rows["blended_score"] == rows["wavelet_score"]).all()
    assert rows["wavelet_score"].between(0, 1).all()
