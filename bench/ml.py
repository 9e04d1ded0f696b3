"""ML workloads: batched training on real data, batch and single-symbol prediction.

Run with ``python -c "import bench.ml; from bench.__main__ import main; main(['ml_train'])"``
(or ``python -m bench ml_train`` once ``bench/__main__.py`` imports this module).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._harness import Result, median_time, shared, timed, workload

N_TRAIN = 100
N_PREDICT = 500


def _real_store(tmp: str):
    """The 5-year S&P prices, the benchmarks and the sectors in a fresh SQLite store."""
    from sentinel.data.importer import import_files
    from sentinel.db import Store

    store = Store(f"sqlite:///{Path(tmp) / 'ml.db'}")
    import_files(store, [shared("sp500_5y_prices.csv.gz")], skip_bad=True)
    import_files(store, [shared("benchmarks.csv.gz")], kind="benchmark", skip_bad=True)
    import_files(store, [shared("sectors.csv")], kind="sectors", skip_bad=True)
    return store


@workload("ml_train")
def ml_train() -> list[Result]:
    """Train ensembles for 100 real symbols (~250 weekly samples each); target <= 0.5 s/symbol."""
    from sentinel.ml._tf import configure_threads

    configure_threads(1, 1)  # on 2 cores one TF thread + one XGBoost worker is fastest
    from sentinel.ml.dataset import generate_samples, samples_to_arrays
    from sentinel.ml.models import EnsembleModel
    from sentinel.ml.training import train_as_of

    with tempfile.TemporaryDirectory() as tmp:
        store = _real_store(tmp)
        symbols = store.market.universe_symbols(store.market.price_span()[1])  # type: ignore[index]
        pool = symbols[: N_TRAIN + 10]  # a few lack history (BHF, CSRA): keep 100 trainable
        t_samples = timed(lambda: generate_samples(store, pool, horizon_days=14))
        samples = store.signals.get_training_samples(horizon_days=14)
        counts = samples.groupby("symbol").size()
        syms = list(counts[counts >= 100].index[:N_TRAIN])
        train_as_of(store, symbols=syms[:2], max_epochs=1, validate=False)  # import + trace
        fast = {}
        t_fast = timed(lambda: fast.update(r=train_as_of(store, symbols=syms, validate=False)))
        full = {}
        t_full = timed(lambda: full.update(r=train_as_of(store, symbols=syms, validate=True)))
        data = samples_to_arrays(samples[samples["symbol"].isin(syms[:3])])
        singles = []
        for X, y, _ in data.values():
            t = time.perf_counter()
            EnsembleModel().fit(X, y)
            singles.append(time.perf_counter() - t)
    n_fast, n_full = len(fast["r"].models), len(full["r"].models)
    ref = statistics.mean(singles)
    mean_n = float(counts.loc[syms].mean())
    return [
        Result("ml_train", f"train_as_of {n_fast} symbols, one fit each (walk-forward), per symbol",
               t_fast / len(syms), "s", 0.5, ref,
               f"{mean_n:.0f} samples/symbol; reference: one plain NN+XGB fit per symbol (3)"),
        Result("ml_train", f"train_as_of {n_full} symbols, validation on (3 fits each), per symbol",
               t_full / len(syms), "s", 0.5, ref,
               "purged-validation fit + shuffled-split diagnostic + final refit on all samples"),
        Result("ml_train", f"generate samples, {len(pool)} symbols (features + labels)", t_samples,
               "s", None, None, f"{int(counts.sum()):,} samples"),
    ]  # fmt: skip


@workload("ml_predict")
def ml_predict() -> list[Result]:
    """Predict 500 symbols in one batch (< 100 ms) and one symbol (< 10 ms)."""
    from sentinel.ml._bench import _data
    from sentinel.ml._tf import configure_threads

    configure_threads(1, 1)
    from sentinel.ml.batched import train_many
    from sentinel.ml.models import NNRegressor, XGBRegressorModel
    from sentinel.ml.predictor import Predictor

    data = _data(5, 250, 20)
    trained = train_many(data, nn=NNRegressor(max_epochs=5), xgb=XGBRegressorModel(),
                         leakage_diagnostic=False)  # fmt: skip
    models = [r.model for r in trained.values()]
    pred = Predictor()
    for i in range(N_PREDICT):
        pred.add(f"P{i:03d}", models[i % len(models)])  # full-size models (150 trees each)
    rng = np.random.default_rng(0)
    rows = {f"P{i:03d}": rng.normal(size=20) for i in range(N_PREDICT)}
    first = timed(lambda: pred.predict_batch(rows))  # builds the stacked arrays once
    batch = median_time(lambda: pred.predict_batch(rows), repeat=20)
    it = iter(list(rows.items()) * 3)
    one = median_time(lambda: pred.predict_one(*next(it)), repeat=300, warmup=20)
    keras_model = models[0].nn_.to_keras()
    x = rows["P000"][None].astype("float32")
    keras_call = median_time(lambda: keras_model(x, training=False), repeat=50, warmup=5)
    keras_predict = median_time(lambda: keras_model.predict(x, verbose=0), repeat=10, warmup=2)
    return [
        Result("ml_predict", f"predict_batch, {N_PREDICT} symbols (median)", batch * 1e3, "ms",
               100.0, keras_call * 1e3 * N_PREDICT,
               f"first call {first * 1e3:.0f} ms (stacks the models); reference: Keras "
               f"model(x) once per symbol"),
        Result("ml_predict", "predict_one (median)", one * 1e3, "ms", 10.0, keras_call * 1e3,
               f"reference: Keras model(x) on one row (NN only); model.predict "
               f"{keras_predict * 1e3:.0f} ms"),
    ]  # fmt: skip


@workload("ml_pooled")
def ml_pooled() -> list[Result]:
    """One pooled retrain over 366 symbols x 250 weekly samples (the S&P file's shape): < 30 s.

    Synthetic rows of that shape (``sentinel.ml._bench._data``: a weak planted signal in noise),
    because training time depends on the row count and the early-stopped epoch count, not on
    which stocks the rows come from; building the real samples alone costs minutes.
    """
    from sentinel.ml._bench import _data
    from sentinel.ml._tf import configure_threads

    configure_threads(1, 1)
    from sentinel.ml.pooled import POOLED_BATCH, POOLED_LR, POOLED_PATIENCE, train_pooled

    data = _data(366, 250, 20)
    small = dict(list(data.items())[:3])
    train_pooled(small, kind="pooled", horizon_days=14, min_samples=100, max_epochs=1)  # trace
    fit = {}
    cpu = time.process_time()
    t = timed(
        lambda: fit.update(
            r=train_pooled(data, kind="pooled", horizon_days=14, min_samples=100, max_epochs=60)
        )
    )
    cpu = time.process_time() - cpu  # all threads: TensorFlow's and XGBoost's
    model = fit["r"].predictor.pooled
    ic = fit["r"].metrics["_pooled"].get("validation_ic")
    return [
        Result("ml_pooled", "pooled retrain, 366 symbols x 250 samples (91,500 rows)", t, "s",
               30.0, None,
               f"inner fit + refit on all rows; CPU {cpu:.1f} s; NN batch {POOLED_BATCH}, lr "
               f"{POOLED_LR:g}, patience {POOLED_PATIENCE}, epochs {model.nn_.best_epoch_}, trees "
               f"{model.xgb_.best_n_trees_}; validation IC {ic:.3f}; load avg "
               f"{os.getloadavg()[0]:.2f}"),
    ]  # fmt: skip
