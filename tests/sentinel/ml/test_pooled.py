"""Model kinds (per_symbol, pooled, hierarchical) and cross-sectional targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata, spearmanr

N_SYM, N_TRAIN, N_TEST = 8, 90, 30


def universe(signal: bool, seed: int = 0):
    """Weekly samples of N_SYM symbols; with ``signal`` the label depends on feature 0 only."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    dates = np.datetime64("2015-01-02") + 7 * np.arange(n)
    X = rng.normal(size=(N_SYM, n, 20))
    noise = rng.normal(size=(N_SYM, n))
    y = 0.03 * np.tanh(X[:, :, 0]) + 0.01 * noise if signal else 0.03 * noise
    train = {f"S{i}": (X[i, :N_TRAIN], y[i, :N_TRAIN], dates[:N_TRAIN]) for i in range(N_SYM)}
    return train, X[:, N_TRAIN:], y[:, N_TRAIN:]


def mean_ic(predictor, X_test, y_test) -> float:
    """Mean over test dates of the Spearman IC across the symbols (scipy, computed directly)."""
    ics = []
    for t in range(X_test.shape[1]):
        rows = {f"S{i}": X_test[i, t] for i in range(N_SYM)}
        pred = predictor.predict_batch(rows)
        p = [pred[f"S{i}"] for i in range(N_SYM)]
        ics.append(spearmanr(p, y_test[:, t]).statistic)
    return float(np.mean(ics))


def fit_kind(kind: str, train):
    from sentinel.ml.batched import train_many
    from sentinel.ml.nn import NNRegressor
    from sentinel.ml.pooled import train_pooled
    from sentinel.ml.predictor import Predictor

    if kind == "per_symbol":
        pred = Predictor()
        for s, r in train_many(
            train, nn=NNRegressor(max_epochs=3), leakage_diagnostic=False
        ).items():
            pred.add(s, r.model)
        return pred
    fit = train_pooled(train, kind=kind, horizon_days=14, min_samples=60, max_epochs=3)
    assert not fit.failed, fit.failed
    return fit.predictor


@pytest.fixture(scope="module")
def planted():
    return universe(signal=True)


@pytest.fixture(scope="module")
def noise():
    return universe(signal=False, seed=1)


@pytest.mark.parametrize("kind", ["per_symbol", "pooled", "hierarchical"])
def test_every_kind_finds_a_planted_signal_and_not_noise(kind, planted, noise):
    found = mean_ic(fit_kind(kind, planted[0]), planted[1], planted[2])
    assert found > 0.4
    # 30 dates x 8 symbols: the mean IC of a useless score has a spread of about 0.07
    assert abs(mean_ic(fit_kind(kind, noise[0]), noise[1], noise[2])) < 0.2


def test_hierarchical_leans_on_the_pool_for_symbols_with_little_data(planted):
    from sentinel.ml.pooled import cross_sectional_z, train_pooled

    train = dict(planted[0])
    X, y, d = train["S0"]
    train["S0"] = (X[:30], y[:30], d[:30])  # below min_samples: no own model
    fit = train_pooled(train, kind="hierarchical", horizon_days=14, min_samples=60, max_epochs=2)
    assert "S0" not in fit.predictor.weights and "S0" not in fit.failed
    assert fit.predictor.weights["S1"] == pytest.approx(90 / (90 + 60))
    rows = {f"S{i}": planted[1][i, 0] for i in range(N_SYM)}
    Xz = cross_sectional_z(np.vstack(list(rows.values())), np.zeros(N_SYM))
    pooled_only = fit.predictor.pooled.predict(Xz)
    out = fit.predictor.predict_batch(rows)
    assert out["S0"] == pytest.approx(pooled_only[0])
    assert out["S1"] != pytest.approx(pooled_only[1])


def test_too_few_samples_is_one_clear_line_and_no_model():
    from sentinel.ml.pooled import train_pooled

    train, _, _ = universe(signal=True)
    one = {"S0": train["S0"]}
    fit = train_pooled(one, kind="pooled", horizon_days=14, min_samples=60, max_epochs=2)
    assert fit.predictor is None
    assert fit.failed == {
        "_pooled": "pooled model: 90 samples from 1 symbol(s); it needs "
        "ml_min_samples_per_symbol 60 samples from at least 2 symbols"
    }


def test_targets_and_cross_sectional_z_equal_a_direct_computation():
    from sentinel.ml.blend import return_to_score
    from sentinel.ml.pooled import cross_sectional_z, transform_target

    rng = np.random.default_rng(3)
    dates = np.repeat(np.array(["2016-01-08", "2016-01-15", "2016-01-22"]), 5)
    y = rng.normal(0, 0.05, size=15)
    X = rng.normal(size=(15, 3))
    np.testing.assert_array_equal(transform_target(y, dates, "return"), y)
    ex = transform_target(y, dates, "excess")
    rk = transform_target(y, dates, "rank")
    z = cross_sectional_z(X, dates)
    for k in range(3):
        sl = slice(5 * k, 5 * k + 5)
        np.testing.assert_allclose(ex[sl], y[sl] - y[sl].mean())
        pct = rankdata(y[sl]) / 5
        np.testing.assert_allclose(return_to_score(rk[sl]), pct)  # ml_score = percentile
        np.testing.assert_allclose(z[sl], (X[sl] - X[sl].mean(0)) / X[sl].std(0))
    with pytest.raises(ValueError, match="unknown target"):
        transform_target(y, dates, "alpha")
    # a date with one row has no cross-section: every z-score is 0
    assert (cross_sectional_z(X[:1], dates[:1]) == 0).all()
    assert pd.isna(transform_target(y, dates, "excess")).sum() == 0


def test_an_unfitted_pooled_report_is_refused_and_nothing_is_stored(store, tmp_path):
    """Pooled reports are saved as ``_pooled`` (tests/sentinel/ml/test_pooled_store.py)."""
    from sentinel.ml.errors import MLError
    from sentinel.ml.pooled import PooledPredictor
    from sentinel.ml.training import TrainReport, save_models

    report = TrainReport(None, predictor=PooledPredictor(pooled=None))
    with pytest.raises(MLError, match="cannot save an unfitted model for _pooled"):
        save_models(store, report, tmp_path / "models")
    assert not (tmp_path / "models").exists()
    assert store.records.get_model_records() == []


def test_unknown_model_kind_or_label_start_is_one_clear_error(store):
    from sentinel.ml.errors import MLError
    from sentinel.ml.training import train_as_of

    with pytest.raises(MLError, match="unknown ml.model 'global'"):
        train_as_of(store, model="global")
    with pytest.raises(MLError, match="unknown ml.label_from 'open'"):
        train_as_of(store, label_from="open")
