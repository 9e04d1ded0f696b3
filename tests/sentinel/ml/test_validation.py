"""Purged split and metrics: the validation must not leak and must be comparable to baselines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ml.errors import ModelError
from sentinel.ml.validation import (
    aggregate_metrics,
    purged_split,
    regression_metrics,
    validate_symbol,
)


def test_purge_and_embargo_keep_label_windows_out_of_validation_block():
    rng = np.random.default_rng(1)
    dates = np.datetime64("2020-01-01") + np.sort(rng.choice(900, size=120, replace=False))
    shuffled = rng.permutation(120)
    split = purged_split(dates[shuffled], horizon_days=14)
    d = dates[shuffled]
    start = d[split.val_idx].min()
    assert start == split.val_start
    assert (d[split.train_idx] + np.timedelta64(28, "D") < start).all()
    assert (d[split.purged_idx] < start).all()
    assert (d[split.purged_idx] + np.timedelta64(28, "D") >= start).all()
    assert len(split.val_idx) >= 24  # ~20 % of 120, most recent
    assert sorted([*split.train_idx, *split.val_idx, *split.purged_idx]) == list(range(120))


def test_weekly_samples_lose_exactly_four_to_purge_and_embargo():
    dates = np.datetime64("2020-01-01") + 7 * np.arange(100)
    split = purged_split(dates, horizon_days=14)
    assert (len(split.train_idx), len(split.val_idx), len(split.purged_idx)) == (76, 20, 4)


def test_purge_leaving_nothing_raises():
    with pytest.raises(ModelError, match="no training samples"):
        purged_split(np.datetime64("2020-01-01") + np.arange(10), horizon_days=30)


def test_metrics_by_hand():
    m = regression_metrics([0.01, -0.02, 0.03, 0.00], [0.02, -0.01, 0.01, -0.01])
    assert m["rmse"] == pytest.approx(np.sqrt((1e-4 + 1e-4 + 4e-4 + 1e-4) / 4))
    assert m["mae"] == pytest.approx(0.0125)
    assert m["hit_rate"] == pytest.approx(0.75)  # 0.00 vs -0.01 differ in sign
    assert m["ic"] == pytest.approx(3.5 / np.sqrt(4.5 * 5.0))  # Spearman with a tie
    zero = regression_metrics([0.01, -0.02], [0.0, 0.0])
    assert zero["ic"] is None and zero["hit_rate"] is None and zero["r2"] is not None


def test_validate_symbol_reports_models_baselines_and_diagnostic(data):
    import json

    from sentinel.ml.models import EnsembleModel, NNRegressor, XGBRegressorModel
    from tests.sentinel.ml.conftest import FAST_NN

    X, y, dates = data
    model = EnsembleModel(NNRegressor(**FAST_NN), XGBRegressorModel(n_estimators=20))
    rep = validate_symbol(X, y, dates, model=model)
    json.dumps(rep, allow_nan=False)
    assert set(rep["models"]) == {"nn", "xgb", "ensemble"}
    assert set(rep["baselines"]) == {"zero", "reversal_20", "momentum_60", "ridge"}
    # the planted signal is in feature 0: the ridge baseline, fitted on the same rows, finds it
    assert rep["baselines"]["ridge"]["ic"] > 0.5
    assert rep["shuffled_split"]["n"] == 20
    assert rep["validation_rmse"] == rep["models"]["ensemble"]["rmse"]
    assert rep["split"]["n_validation"] == 20


def test_aggregate_skips_undefined_and_sums_samples():
    a = {"validation_rmse": 0.02, "validation_mae": 0.01, "validation_r2": 0.1,
         "validation_ic": None, "training_samples": 100,
         "baselines": {"zero": {"rmse": 0.03, "ic": None}}}  # fmt: skip
    b = {"validation_rmse": 0.04, "validation_mae": 0.03, "validation_r2": -0.1,
         "validation_ic": 0.2, "training_samples": 50,
         "baselines": {"zero": {"rmse": 0.05, "ic": None}}}  # fmt: skip
    agg = aggregate_metrics([a, b])
    assert agg["avg_validation_rmse"] == pytest.approx(0.03)
    assert agg["avg_validation_r2"] == pytest.approx(0.0)
    assert agg["avg_validation_ic"] == pytest.approx(0.2)
    assert agg["total_trained_samples"] == 150
    assert agg["baselines"]["zero"]["avg_validation_rmse"] == pytest.approx(0.04)
    assert agg["baselines"]["zero"]["avg_validation_ic"] is None


def _spearman_scipy(a, b):
    """The former ``_spearman``: scipy's rankdata, then the correlation of the ranks."""
    from scipy.stats import rankdata

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


_values = st.lists(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.sampled_from([0.0, -0.0, 1.0, 1.0, np.inf, -np.inf, np.nan]),  # ties and specials
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(values=_values, other=st.randoms(use_true_random=False))
def test_average_ranks_and_spearman_equal_scipys_to_the_bit(values, other):
    from scipy.stats import rankdata

    from sentinel.ml.validation import _spearman, average_ranks

    a = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(average_ranks(a), rankdata(a))
    b = np.array([other.choice(values) for _ in values], dtype=np.float64)
    with np.errstate(all="ignore"):
        new, old = _spearman(a, b), _spearman_scipy(a, b)
    assert (new is None and old is None) or np.array_equal(new, old, equal_nan=True)
