"""Reusable timings of the ML layer (``python -m sentinel.ml._bench``); synthetic data.

Not a test: numbers depend on the machine. Prints a JSON dict of seconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from sentinel.ml.batched import fit_nn_batched, train_many
from sentinel.ml.models import NNRegressor, XGBRegressorModel
from sentinel.ml.predictor import Predictor


def _data(n_symbols: int, n_samples: int, n_features: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2012-01-06") + 7 * np.arange(n_samples)
    out = {}
    for s in range(n_symbols):
        X = rng.normal(size=(n_samples, n_features))
        y = 0.02 * np.tanh(X[:, 0]) + 0.01 * X[:, 1] * X[:, 2] + 0.03 * rng.normal(size=n_samples)
        out[f"SYM{s:03d}"] = (X, y, dates)
    return out


def run(
    n_symbols: int = 100,
    n_samples: int = 250,
    n_features: int = 20,
    n_predict: int = 500,
    n_single: int = 3,
    intra_op_threads: int = 1,
    xgb_workers: int = 1,
) -> dict[str, float]:
    """Batched ``train_many``, per-symbol Keras baseline, batch and single prediction."""
    from sentinel.ml._tf import configure_threads  # lazy: imports TensorFlow

    configure_threads(intra_op_threads, 1)

    data = _data(n_symbols, n_samples, n_features)
    res: dict[str, float] = {}
    fit_nn_batched([d[:2] for d in list(data.values())[:2]], NNRegressor(max_epochs=1))  # warm
    t = time.perf_counter()
    nn_only = fit_nn_batched([d[:2] for d in data.values()])
    res["batched_nn_only_per_symbol_s"] = (time.perf_counter() - t) / n_symbols
    res["batched_nn_mean_epochs"] = float(np.mean([r.model.n_epochs_ for r in nn_only]))
    for diag in (False, True):
        t = time.perf_counter()
        trained = train_many(data, leakage_diagnostic=diag, xgb_workers=xgb_workers)
        key = "train_many_with_diag" if diag else "train_many"
        res[f"{key}_per_symbol_s"] = (time.perf_counter() - t) / n_symbols
    t = time.perf_counter()
    for X, y, _ in list(data.values())[:n_single]:
        NNRegressor().fit(X, y)
        XGBRegressorModel().fit(X, y)
    res["single_keras_ensemble_fit_per_symbol_s"] = (time.perf_counter() - t) / n_single
    models = [r.model for r in trained.values()]
    pred = Predictor()
    for i in range(n_predict):
        pred.add(f"P{i}", models[i % len(models)])
    rows = {f"P{i}": np.random.default_rng(i).normal(size=n_features) for i in range(n_predict)}
    pred.predict_batch(rows)
    t = time.perf_counter()
    for _ in range(5):
        pred.predict_batch(rows)
    res[f"predict_batch_{n_predict}_s"] = (time.perf_counter() - t) / 5
    t = time.perf_counter()
    for i in range(200):
        pred.predict_one(f"P{i}", rows[f"P{i}"])
    res["predict_one_s"] = (time.perf_counter() - t) / 200
    m0 = models[0]
    x0 = rows["P0"][None]
    t = time.perf_counter()
    for _ in range(200):
        m0.xgb_.booster_.inplace_predict(x0)
    res["xgb_inplace_predict_one_s"] = (time.perf_counter() - t) / 200
    return res


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
