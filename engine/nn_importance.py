"""Permutation importance of the ensemble's network at the latest walk-forward retrain.

XGBoost reports its own gain; a network has no such figure, so the report measures how much the
network's ranking of its own training rows gets worse when one feature column is shuffled: the
drop in Spearman rank IC between the network's prediction and the label (scikit-learn's
``permutation_importance``, a fixed seed, a few repeats). A feature the network ignores drops by
~0. The rows are the samples whose labels were known on the retrain day, read through
``store.view(day)`` (the same rows the models were fitted on), so nothing later enters.

:func:`permutation_ic` reproduces ``permutation_importance(model, X, y, scoring=rank_ic,
n_repeats, random_state)`` with the same shuffles, but scores each feature's shuffled copies
with one ``model.predict`` and ranks all copies at once: scikit-learn's loop made one predict and
one ``spearmanr`` call per feature and repeat (61 per symbol), seconds per report. The tests hold it
equal to scikit-learn's function, to the bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from sentinel.ml.validation import average_ranks

#: Shuffles per feature (the spread is their standard deviation) and their seed.
REPEATS = 3
SEED = 0


def rank_ic(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation of ``model.predict(X)`` with ``y`` (0 when undefined)."""
    ic = spearmanr(model.predict(X), y).statistic
    return float(ic) if np.isfinite(ic) else 0.0


def _average_ranks_rows(values: np.ndarray) -> np.ndarray:
    """:func:`average_ranks` of each row (rows without NaN): ties share their mean rank.

    The same exact half-integers as the 1-D function, for all rows in a few numpy calls.
    """
    n_rows, n = values.shape
    order = np.argsort(values, axis=1)
    ordered = np.take_along_axis(values, order, axis=1)
    new = np.ones((n_rows, n), dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    pos = np.broadcast_to(np.arange(n), (n_rows, n))
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # each tie group's first
    last_flag = np.ones((n_rows, n), dtype=bool)
    last_flag[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last_flag, pos, n)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n_rows, n))
    np.put_along_axis(ranks, order, start + 1 + (end - start) / 2, axis=1)
    return ranks


def _spearman_rows(preds: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``spearmanr(row, y).statistic`` per row of ``preds`` (0 when undefined, as rank_ic).

    The ranks are scipy's ``rankdata`` values (exact half-integers, all rows ranked at once)
    and each correlation is ``np.corrcoef``'s on the same (2, n) rank array ``spearmanr``
    builds, in its operations: the centring and the scaling are elementwise (done for all rows
    at once), the one step whose rounding depends on the call, ``np.dot`` of the centred array
    with its transpose, is the same call per row. So the figures are spearmanr's to the bit
    (the tests compare them), without ``np.corrcoef``'s checks per row.
    """
    out = np.zeros(len(preds))
    if len(y) < 2 or np.isnan(y).any() or (y == y[0]).all():
        return out
    ry = average_ranks(y)
    usable = ~np.isnan(preds).any(axis=1) & (preds != preds[:, :1]).any(axis=1)
    rows = np.flatnonzero(usable)
    if not len(rows):
        return out
    n = len(y)
    centred = _average_ranks_rows(preds[rows])
    centred -= centred.mean(axis=1)[:, None]  # np.cov: X -= X.mean(axis=1)[:, None]
    pair = np.empty((2, n))
    pair[1] = ry - ry.mean()
    cov = np.empty((len(rows), 2, 2))
    for i, rank in enumerate(centred):
        pair[0] = rank
        cov[i] = np.dot(pair, pair.T)
    cov *= np.true_divide(1, n - 1)
    stddev = np.sqrt(np.stack([cov[:, 0, 0], cov[:, 1, 1]], axis=1))
    ic = np.clip(cov[:, 1, 0] / stddev[:, 1] / stddev[:, 0], -1, 1)  # row 1, then column 0
    out[rows] = np.where(np.isfinite(ic), ic, 0.0)
    return out


def permutation_ic(
    model: Any, X: np.ndarray, y: np.ndarray, *, repeats: int = REPEATS, seed: int = SEED
) -> np.ndarray:
    """Drop in rank IC per feature and repeat, shape ``(n_features, repeats)``.

    scikit-learn's ``permutation_importance`` shuffles, per feature, a copy of ``X`` with a
    ``RandomState`` seeded by one draw from ``seed`` (the same seed for every feature), the
    shuffles compounding over the repeats; the same copies are built here and predicted at once.
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.float64)
    n, k = X.shape
    column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    rng, order = np.random.RandomState(column_seed), np.arange(n)
    perms = []  # the row order of the shuffled column after each repeat
    current = np.arange(n)
    for _ in range(repeats):
        rng.shuffle(order)
        current = current[order]
        perms.append(current)
    preds = np.empty((1 + k * repeats, n))
    block = np.empty((repeats, n, k), dtype=X.dtype)
    # One feature's copies per predict: small blocks stay in cache (the predictions are row by
    # row, so they are the same numbers as one predict of every copy).
    preds[0] = model.predict(X)
    for j in range(k):
        block[:] = X
        for r, perm in enumerate(perms):
            block[r, :, j] = X[perm, j]
        rows = slice(1 + j * repeats, 1 + (j + 1) * repeats)
        preds[rows] = np.asarray(model.predict(block.reshape(-1, k))).reshape(repeats, n)
    ics = _spearman_rows(preds, y)
    return (ics[0] - ics[1:]).reshape(k, repeats)


@dataclass
class NetworkImportance:
    """The planner's ``on_retrain`` hook: keeps the latest retrain; :meth:`compute` measures it.

    ``mean`` / ``spread`` (per feature): the drop in rank IC averaged over the symbols' networks,
    then its mean and standard deviation over the repeats.
    """

    horizon_days: int
    book: Any = None
    day: date | None = None
    #: the latest retrain's networks and feature names: only what :meth:`compute` reads, so the
    #: previous retrain's boosters are not kept alive through the next one (~90 MB at 500)
    networks: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    n_models: int = 0
    mean: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)

    def __call__(self, day: date, report: Any) -> None:
        models = getattr(report, "models", None) or {}
        networks = {s: m.nn_ for s, m in models.items() if hasattr(m, "nn_")}
        if networks:
            self.day, self.networks = day, networks
            self.features = list(getattr(report, "features", None) or [])

    def compute(
        self, store: Any, read_samples: Callable[[date, int], Any] | None = None
    ) -> NetworkImportance:
        """Measure the latest retrain's networks on their training rows (once).

        ``read_samples`` (:func:`engine.evaluate.sample_reader`) shares the read of those rows
        with the report's ridge baselines; by default they are read here.
        """
        if not self.networks or self.mean:
            return self
        from sentinel.ml.dataset import samples_to_arrays
        from sentinel.ml_features import FEATURE_NAMES

        models = self.networks
        view = store.view(self.day)
        if read_samples is not None:
            samples = read_samples(self.day, self.horizon_days)
        else:
            samples = view.signals.get_training_samples(known_by=self.day,
                                                        horizon_days=self.horizon_days)  # fmt: skip
        samples = samples[samples["symbol"].isin(set(models))]
        if self.book is not None and len(samples):
            samples = self.book.with_book_features(samples, view)
        names = self.features or list(FEATURE_NAMES)
        drops = []
        # one BLAS thread: waking a second one for each small matmul cost more than it saved
        with threadpool_limits(limits=1, user_api="blas"):
            for sym, (X, y, _) in samples_to_arrays(samples).items():
                nn = models[sym]
                n_in = getattr(nn, "n_features_in_", X.shape[1])
                if X.shape[1] == n_in == len(names) and len(y) > 2:
                    drops.append(permutation_ic(nn, X, y))
        if drops:
            per_repeat = np.mean(drops, axis=0)  # (features, repeats), averaged over symbols
            order = np.argsort(-per_repeat.mean(axis=1), kind="stable")
            self.n_models = len(drops)
            self.mean = {names[i]: float(per_repeat[i].mean()) for i in order}
            self.spread = {names[i]: float(per_repeat[i].std()) for i in order}
        return self
