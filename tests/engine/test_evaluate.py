"""``sentinel ml evaluate`` end to end on a tiny demo store: as-of joins, outputs, bad input."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from engine.config import RunConfig
from engine.evaluate import (
    SCORES,
    ImportanceLog,
    evaluate_predictions,
    evaluate_run,
    write_evaluation,
)
from sentinel.db import Store
from sentinel.ml.evaluation import RETURN, EvaluationError
from tests.conftest import make_demo_db
from tests.future import scramble_after


def _cfg(**over) -> RunConfig:
    base = {
        "name": "ev", "start": "2016-06-01", "end": "2016-12-30",
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 3}},
        "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward",
               "retrain": "yearly", "min_samples": 20, "max_epochs": 2, "horizon_days": 14},
    }  # fmt: skip
    base.update(over)
    return RunConfig.model_validate(base)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("ev"), 5, 6, "2015-01-01", "2017-03-31")


@pytest.fixture(scope="module")
def run_eval(demo_db):
    store = Store(f"sqlite:///{demo_db}")
    return evaluate_run(_cfg(), store=store), store


def test_every_score_is_evaluated_and_the_last_days_are_not_yet_known(run_eval):
    ev, store = run_eval
    e = ev.evaluation
    assert set(e.summary) == set(SCORES)
    end = ev.end
    pending = sorted(e.per_day.loc[~e.per_day["known"], "date"].dt.date.unique())
    assert pending and all(d + timedelta(days=14) > end for d in pending)
    known = sorted(e.per_day.loc[e.per_day["known"], "date"].dt.date.unique())
    assert all(d + timedelta(days=14) <= end for d in known)
    assert ev.frame.loc[ev.frame["date"].dt.date.isin(pending), RETURN].isna().all()
    assert e.summary["zero"]["mean_ic"] is None  # a constant ranks nothing
    assert e.summary["ridge"]["n_days"] > 0 and e.summary["reversal_20"]["n_days"] > 0


def test_forward_return_is_the_label_definition(run_eval):
    ev, store = run_eval
    row = ev.frame.dropna(subset=[RETURN]).iloc[5]
    t = row["date"].date()
    bars = store.market.get_prices(row["symbol"], start_date=t, end_date=t + timedelta(days=14))
    closes = bars["close"]
    assert row[RETURN] == pytest.approx(closes.iloc[-1] / closes.iloc[0] - 1, rel=1e-12)


@pytest.mark.parametrize("seed", [3, 517])
def test_figures_do_not_move_when_the_future_is_scrambled(run_eval, tmp_path_factory, seed):
    """Bars after the run's end are scrambled: the evaluation as of the end is the same."""
    ev, store = run_eval
    copy = tmp_path_factory.mktemp("scr") / "demo.db"
    for suffix in ("", "-wal", "-shm"):  # the samples the run wrote may still be in the WAL
        src = f"{store.engine.url.database}{suffix}"
        if os.path.exists(src):
            shutil.copy(src, f"{copy}{suffix}")
    other = Store(f"sqlite:///{copy}")
    with other.engine.begin() as conn:
        scramble_after(other, "prices", ev.end, seed, conn)
    preds = ev.frame[["date", "symbol", "predicted_return", "ml_score", "wavelet_score",
                      "blended_score"]]  # fmt: skip
    again = evaluate_predictions(other, ev.config, preds, ev.retrains, ev.end)
    a, b = ev.evaluation.per_day, again.evaluation.per_day
    np.testing.assert_array_equal(a["date"], b["date"])
    for col in ("ic", "spread", "q1_return"):
        np.testing.assert_allclose(a[col], b[col], equal_nan=True, rtol=1e-12, err_msg=col)
    np.testing.assert_allclose(ev.frame[RETURN], again.frame[RETURN], equal_nan=True)
    # the scrambling did change the store after the end (the test would be empty otherwise)
    after = store.market.get_prices(ev.frame["symbol"].iloc[0], start_date=ev.end)["close"]
    moved = other.market.get_prices(ev.frame["symbol"].iloc[0], start_date=ev.end)["close"]
    assert (after.iloc[1:] != moved.iloc[1:]).all() and len(after) > 1
    other.engine.dispose()


def test_outputs_are_json_and_csv(run_eval, tmp_path):
    ev, _ = run_eval
    paths = write_evaluation(tmp_path / "out", ev)
    body = json.loads(paths["ml_eval.json"].read_text())
    assert body["days_not_yet_known"] > 0 and set(body["scores"]) == set(SCORES)
    table = pd.read_csv(paths["ml_eval.csv"])
    assert set(table["score"]) == set(SCORES)
    assert set(table["status"]) == {"known", "not yet known"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ml_eval.csv", "ml_eval.json"]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"ml": {"enabled": False}}, "needs a run that uses ML"),
        ({"ml": {"mode": "current"}}, "needs ml.mode walk_forward"),
        ({"end": "2016-06-10", "ml": {"horizon_days": 30}}, "not shorter than the period"),
        ({"universe": {"kind": "list", "symbols": ["DEMO01"]}}, "at least 2 symbols"),
    ],
)
def test_bad_input_is_refused_before_the_run(demo_db, tmp_path, over, message):
    store = Store(f"sqlite:///{demo_db}")
    if "universe" in over:
        over["universe"]["symbols"] = [store.market.securities()[0].symbol]
    with pytest.raises(EvaluationError, match=message):
        evaluate_run(_cfg(**over), store=store)


def test_report_sections_show_every_score_and_the_pending_days(run_eval, tmp_path):
    from engine.ml_report import backtest_sections, sections, write_page

    ev, store = run_eval
    parts = dict(sections(ev))
    assert list(parts) == ["ML: cross-sectional IC", "ML: IC over time", "ML: quantile returns",
                           "ML: diagnostics"]  # fmt: skip
    table = parts["ML: cross-sectional IC"]
    assert all(f"<td>{s}</td>" in table for s in SCORES)
    assert f"{ev.evaluation.days_pending} days within the horizon" in table
    assert "calibration by predicted decile" in parts["ML: diagnostics"]
    page = write_page(tmp_path / "ml_eval.html", ev, "t").read_text()
    assert page.count("Plotly.newPlot") == 4 and "ridge" in page  # + predicted vs realised
    # a run the evaluation cannot use gets a section saying why, not a failed backtest
    one = ev.frame[ev.frame["symbol"] == ev.frame["symbol"].iloc[0]]
    why = backtest_sections(store, ev.config, one, ev.retrains, ev.end)
    assert len(why) == 1 and "not evaluated: " in why[0][1] and "at least 2 symbols" in why[0][1]


def test_importance_log_reads_xgboost_gain_by_feature_name():
    from types import SimpleNamespace

    from sentinel.ml.xgb import XGBRegressorModel
    from sentinel.ml_features import FEATURE_NAMES

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 20))
    y = 0.05 * X[:, 3] + 0.001 * rng.normal(size=120)  # only return_60d matters
    xgb = XGBRegressorModel(n_estimators=20).fit(X, y)
    log = ImportanceLog()
    day = pd.Timestamp("2020-01-03").date()
    log(day, SimpleNamespace(models={"A": SimpleNamespace(xgb_=xgb), "B": object()}))
    assert (log.day, log.n_models) == (day, 1)
    assert next(iter(log.gain)) == FEATURE_NAMES[3]  # the largest gain first
    gains = xgb.booster_.get_score(importance_type="gain")
    assert log.gain[FEATURE_NAMES[3]] == pytest.approx(gains["f3"])


def test_ridges_from_one_read_equal_a_read_through_each_days_view(run_eval):
    """The ridge baselines of a day, from the samples read once at a later retrain, are the
    fits on the rows ``store.view(day)`` returns (the former per-retrain read)."""
    from engine.evaluate import _ridges
    from sentinel.ml.baselines import fit_ridge, ridge_weights

    _, store = run_eval
    known = store.view(None).signals.get_training_samples(horizon_days=14)["label_known_at"]
    latest = known.max().date()
    samples = store.view(latest).signals.get_training_samples(known_by=latest, horizon_days=14)
    symbols = set(samples["symbol"])
    days = sorted({d.date() for d in known.quantile([0.1, 0.4, 0.7, 1.0], interpolation="lower")})
    for day in days:
        got = _ridges(samples, day, symbols, 20)
        rows = store.view(day).signals.get_training_samples(known_by=day, horizon_days=14)
        want = {
            str(s): ridge_weights(fit_ridge(np.array(g["features"].tolist()), g["label"]))
            for s, g in rows.groupby("symbol")
            if len(g) >= 20
        }
        assert got.keys() == want.keys() and want, day
        for s, (w, b) in want.items():
            np.testing.assert_array_equal(got[s][0], w)
            assert got[s][1] == b
