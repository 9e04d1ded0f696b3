"""The ML report's diagnostics: the network's permutation importance and the predicted vs
realised chart (the IC sections are tested with ``sentinel ml evaluate`` in test_evaluate)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate import ImportanceLog
from engine.ml_report import importance_table, predicted_vs_realised_chart
from engine.nn_importance import REPEATS, NetworkImportance, permutation_ic, rank_ic
from sentinel.ml.evaluation import RETURN
from sentinel.ml_features import FEATURE_NAMES
from tests.future import rewrite_samples_known_after
from tests.sentinel.ml.conftest import make_data


class Planted:
    """A model whose prediction is feature 3 alone."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return 2.0 * np.asarray(X)[:, 3]


def test_permutation_importance_finds_the_one_feature_a_planted_model_uses():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 20))
    y = X[:, 3] + 0.5 * rng.normal(size=300)
    drops = permutation_ic(Planted(), X, y)
    assert drops.shape == (20, REPEATS)
    mean = drops.mean(axis=1)
    assert int(np.argmax(mean)) == 3 and mean[3] > 0.5
    np.testing.assert_allclose(np.delete(drops, 3, axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(drops, permutation_ic(Planted(), X, y))  # seeded


def test_a_fitted_network_depends_most_on_its_signal_feature():
    from sentinel.ml.nn import NNRegressor

    X, y, _ = make_data(200, seed=2)  # the label is a function of feature 0 plus noise
    nn = NNRegressor(max_epochs=12, patience=12, random_state=0).fit(X, y)
    mean = permutation_ic(nn, X, y).mean(axis=1)
    assert int(np.argmax(mean)) == 0
    assert mean[0] > 3 * np.max(np.abs(mean[1:]))


def _sklearn_permutation_ic(model, X, y):
    """The reference: scikit-learn's own loop (one predict and one spearmanr per copy)."""
    from sklearn.inspection import permutation_importance

    res = permutation_importance(model, X, y, scoring=rank_ic, n_repeats=REPEATS, random_state=0)
    return np.asarray(res.importances, dtype=float)


class Bumpy:
    """A nonlinear model with ties (rounding) and a constant output on some inputs."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        return np.round(np.tanh(X[:, 0] * X[:, 1]) + np.where(X[:, 2] > 0, X[:, 2], 0.0), 1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    extra=st.integers(0, 3),
    seed=st.integers(0, 2**16),
    ties=st.booleans(),
    constant_y=st.booleans(),
)
def test_permutation_ic_equals_scikit_learns_loop_to_the_bit(n, extra, seed, ties, constant_y):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3 + extra))
    if ties:
        X = np.round(X)
    y = np.full(n, 0.5) if constant_y else np.round(rng.normal(size=n), 1 if ties else 6)
    np.testing.assert_array_equal(
        permutation_ic(Bumpy(), X, y), _sklearn_permutation_ic(Bumpy(), X, y)
    )


def test_permutation_ic_of_a_network_equals_scikit_learns_loop_to_the_bit():
    from sentinel.ml.nn import NNRegressor

    X, y, _ = make_data(120, seed=3)
    nn = NNRegressor(max_epochs=3, patience=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(permutation_ic(nn, X, y), _sklearn_permutation_ic(nn, X, y))


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """Two symbols' ensembles trained as of a day, on a demo store with stored samples."""
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.db import Store
    from sentinel.ml.dataset import generate_samples
    from sentinel.ml.training import train_as_of

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('nnimp') / 'demo.db'}")
    install_demo(store, generate_demo_universe(7, 4, date(2015, 1, 1), date(2016, 12, 31)))
    symbols = [s.symbol for s in store.market.securities()]
    generate_samples(store, symbols, horizon_days=14)
    day = date(2016, 6, 30)
    report = train_as_of(store.view(day), as_of=day, symbols=symbols, horizon_days=14,
                         min_samples=30, max_epochs=2, validate=False)  # fmt: skip
    assert len(report.models) >= 2
    return store, day, report


def test_network_importance_measures_the_retrains_networks_on_rows_known_that_day(retrained):
    store, day, report = retrained
    net = NetworkImportance(14)
    net(day, report)
    net.compute(store)
    assert net.n_models == len(report.models) and set(net.mean) == set(FEATURE_NAMES)
    assert all(np.isfinite(v) for v in (*net.mean.values(), *net.spread.values()))
    assert list(net.mean.values()) == sorted(net.mean.values(), reverse=True)
    # samples whose labels were known only after the retrain day change nothing
    assert rewrite_samples_known_after(store, day, seed=5)
    again = NetworkImportance(14)
    again(day, report)
    assert again.compute(store).mean == net.mean


def test_importance_table_puts_the_network_beside_the_xgboost_gain():
    log = ImportanceLog()
    log.day, log.n_models, log.gain = date(2020, 1, 3), 2, {"a": 3.0, "b": 1.0}
    net = NetworkImportance(14, day=log.day, n_models=2, mean={"b": 0.2, "a": 0.0},
                            spread={"b": 0.01, "a": 0.0})  # fmt: skip
    html = importance_table(log, net)
    assert "XGBoost gain by feature and network permutation importance" in html
    assert "75.0 %" in html and "0.2000 ± 0.0100" in html and "0.0000 ± 0.0000" in html
    assert "network permutation" not in importance_table(log, None)
    assert importance_table(None, None) == ""


def test_predicted_vs_realised_chart_shows_known_rows_and_decile_means():
    rng = np.random.default_rng(0)
    pred = rng.normal(0, 0.01, 500)
    frame = pd.DataFrame({"predicted_return": pred, RETURN: pred + rng.normal(0, 0.02, 500)})
    frame.loc[:99, RETURN] = np.nan  # not yet known: left out
    html = predicted_vs_realised_chart(frame)
    assert "symbol-days (400 of 400)" in html and "realised = predicted" in html
    assert predicted_vs_realised_chart(frame.iloc[:105]) == ""  # 5 known rows: no chart


def test_a_shared_sample_reader_gives_the_same_importance_and_reads_once(retrained):
    """The report reads the retrain's samples once for the ridge baselines and the network."""
    from engine.evaluate import sample_reader

    store, day, report = retrained
    read = sample_reader(store)
    calls = []

    def counted(d, h):
        calls.append((d, h))
        return read(d, h)

    shared, own = NetworkImportance(14), NetworkImportance(14)
    shared(day, report)
    own(day, report)
    shared.compute(store, counted)
    own.compute(store)
    assert shared.mean == own.mean and shared.spread == own.spread and own.mean
    assert calls == [(day, 14)]
    assert read(day, 14) is read(day, 14)  # one read per (day, horizon)
