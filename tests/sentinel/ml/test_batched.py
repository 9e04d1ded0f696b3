"""Batched training: same fitted state as NNRegressor, per-symbol isolation and early stopping."""

from __future__ import annotations

import json

import numpy as np

from sentinel.ml.batched import fit_nn_batched, train_many
from sentinel.ml.models import NNRegressor, XGBRegressorModel
from tests.sentinel.ml.conftest import FAST_NN, make_data


def test_batched_gives_fitted_regressors_that_match_their_keras_export():
    sets = [make_data(n, seed=i)[:2] for i, n in enumerate((60, 90, 120))]
    res = fit_nn_batched(sets, NNRegressor(**FAST_NN))
    for (X, _), r in zip(sets, res, strict=True):
        m = r.model
        assert isinstance(m, NNRegressor) and r.error is None
        np.testing.assert_allclose(m.scaler_mean_, X.mean(axis=0))
        Xs = ((X - m.scaler_mean_) / m.scaler_scale_).astype(np.float32)
        ref = m.to_keras()(Xs, training=False).numpy()[:, 0]
        np.testing.assert_allclose(m.predict(X), ref, atol=1e-5)


def test_batched_is_deterministic():
    sets = [make_data(80, seed=i)[:2] for i in range(3)]
    a = fit_nn_batched(sets, NNRegressor(**FAST_NN))
    b = fit_nn_batched(sets, NNRegressor(**FAST_NN))
    for ra, rb, (X, _) in zip(a, b, sets, strict=True):
        np.testing.assert_array_equal(ra.model.predict(X), rb.model.predict(X))


def test_a_symbols_network_does_not_depend_on_the_other_symbols_in_the_batch():
    # row counts differ, so the stacks below also differ in padding and steps per epoch
    sets = [make_data(n, seed=i)[:2] for i, n in enumerate((60, 90, 130))]
    params = NNRegressor(max_epochs=6, patience=2)
    together = fit_nn_batched(sets, params)
    alone = fit_nn_batched(sets[2:], params)  # a stack of one
    pair = fit_nn_batched([sets[1], sets[0]], params)  # other positions, shorter padding
    elsewhere = [pair[1], pair[0], alone[0]]
    epochs = [r.model.n_epochs_ for r in together]
    assert min(epochs) < max(epochs)  # a symbol froze while the others kept training
    for (X, _), a, b in zip(sets, together, elsewhere, strict=True):
        assert (a.model.n_epochs_, a.model.best_epoch_) == (b.model.n_epochs_, b.model.best_epoch_)
        # Weights, BatchNorm, Adam, early stopping and every random draw are per symbol, so only
        # float32 summation order may differ: TF's batched matmul takes another kernel for a
        # stack of one (seen: <1e-8 here, 0 between stacks of 2 and 3). Sharing anything across
        # symbols (e.g. one random stream for the stack) moves predictions by ~1e-2.
        np.testing.assert_allclose(b.model.predict(X), a.model.predict(X), rtol=0, atol=1e-6)


def test_a_bad_symbol_fails_alone():
    good = make_data(80)[:2]
    nan_X = good[0].copy()
    nan_X[3, 3] = np.nan
    res = fit_nn_batched(
        [good, (nan_X, good[1]), (good[0][:4], good[1][:4]), good], NNRegressor(**FAST_NN)
    )
    assert [r.model is not None for r in res] == [True, False, False, True]
    assert "NaN" in res[1].error and "too few" in res[2].error


def test_early_stopping_is_per_symbol_and_keeps_best_epoch():
    # a learnable symbol keeps improving; pure-noise labels stop improving early
    X, y, _ = make_data(150, seed=3)
    noise = np.random.default_rng(9).normal(size=150)
    params = NNRegressor(max_epochs=40, patience=3)
    res = fit_nn_batched([(X, y), (X, noise)], params)
    epochs = [r.model.n_epochs_ for r in res]
    assert min(epochs) < 40  # at least one symbol froze before the others
    for r in res:
        m = r.model
        assert m.best_epoch_ <= m.n_epochs_
        if m.n_epochs_ < 40:  # stopped early: exactly `patience` epochs after the best
            assert m.n_epochs_ - m.best_epoch_ == 3


def test_best_val_loss_is_the_validation_mse_of_the_kept_weights():
    X, y, _ = make_data(100, seed=4)
    m = fit_nn_batched([(X, y)], NNRegressor(**FAST_NN))[0].model
    n_val = 15  # ceil(0.15 * 100): the chronologically last rows
    mse = float(np.mean((m.predict(X[-n_val:]) - y[-n_val:]) ** 2))
    assert np.isclose(m.best_val_loss_, mse, rtol=1e-3)


def test_train_many_end_to_end(trained_many):
    assert all(r.ok for r in trained_many.values())
    r = trained_many["S2"]
    json.dumps(r.metrics, allow_nan=False)
    json.dumps(r.info)
    assert r.info["n_samples"] == 100 and r.metrics["training_samples"] == 100
    assert r.info["label_known_at"] > r.info["train_end"]
    assert r.metrics["shuffled_split"] is not None
    assert r.model.predict(make_data(100, seed=2)[0]).shape == (100,)


def test_train_many_isolates_failures_and_unsorted_dates():
    X, y, d = make_data(80, seed=5)
    perm = np.random.default_rng(0).permutation(80)
    res = train_many(
        {
            "OK": (X[perm], y[perm], d[perm]),
            "NAN": (np.full_like(X, np.nan), y, d),
            "DATES": (X, y, d[:10]),
        },
        nn=NNRegressor(**FAST_NN),
        xgb=XGBRegressorModel(n_estimators=10),
        leakage_diagnostic=False,
        refit="train",
    )
    assert res["OK"].ok and not res["NAN"].ok and not res["DATES"].ok
    assert res["NAN"].error.startswith("NAN:") and "dates" in res["DATES"].error
    assert res["OK"].info["train_end"] < res["OK"].metrics["split"]["validation_start"]


def test_fixed_epoch_refits_leave_the_stack_without_changing_the_others():
    # the refit pass: symbols with few epochs finish first and leave the stack (compaction)
    sets = [make_data(n, seed=i)[:2] for i, n in enumerate((70, 95, 120, 85))]
    params = NNRegressor(max_epochs=8)
    goals = [2, 8, 5, 1]
    together = fit_nn_batched(sets, params, epochs=goals)
    for k, ((X, y), goal) in enumerate(zip(sets, goals, strict=True)):
        alone = fit_nn_batched([(X, y)], params, epochs=[goal])[0]
        assert together[k].model.n_epochs_ == alone.model.n_epochs_ == goal
        np.testing.assert_allclose(
            together[k].model.predict(X), alone.model.predict(X), rtol=0, atol=1e-6
        )


def test_the_training_graph_is_traced_once_for_any_stack_shape():
    from sentinel.ml.batched import _trainer

    params = NNRegressor(max_epochs=3, patience=1, hidden_units=(8, 4), dropout=(0.1, 0.0))
    for n_sym, rows in ((2, 60), (5, 90), (3, 140)):  # new sizes, rows and a shrinking stack
        fit_nn_batched([make_data(rows, seed=i)[:2] for i in range(n_sym)], params)
        fit_nn_batched(
            [make_data(rows, seed=i)[:2] for i in range(n_sym)], params, epochs=[2] * n_sym
        )
    assert _trainer(20, params).epoch_fn.experimental_get_tracing_count() == 1


def test_a_background_warm_up_traces_once_and_changes_no_fit():
    from sentinel.ml.batched import _trainer, prewarm

    # an architecture of its own, so this test sees its trainer's first trace
    params = NNRegressor(max_epochs=4, patience=1, hidden_units=(6, 3), dropout=(0.2, 0.0))
    sets = [make_data(n, seed=i)[:2] for i, n in enumerate((60, 75))]
    prewarm(20, params).join()
    tr = _trainer(20, params)
    assert tr.epoch_fn.experimental_get_tracing_count() == 1
    assert tr.keep_fn.experimental_get_tracing_count() == 1
    first = fit_nn_batched(sets, params, seed=5)
    prewarm(20, params).join()  # a warm-up between two fits leaves nothing behind
    second = fit_nn_batched(sets, params, seed=5)
    assert tr.epoch_fn.experimental_get_tracing_count() == 1
    for (X, _), a, b in zip(sets, first, second, strict=True):
        np.testing.assert_array_equal(a.model.predict(X), b.model.predict(X))
