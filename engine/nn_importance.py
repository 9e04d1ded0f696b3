"""Permutation importance of the ensemble's network at the latest walk-forward retrain.

XGBoost reports its own gain; a network has no such figure, so the report measures how much the
network's ranking of its own training rows gets worse when one feature column is shuffled: the
drop in Spearman rank IC between the network's prediction and the label (scikit-learn's
``permutation_importance``, a fixed seed, a few repeats). A feature the network ignores drops by
~0. The rows are the samples whose labels were known on the retrain day, read through
``store.view(day)`` (the same rows the models were fitted on), so nothing later enters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from scipy.stats import spearmanr

#: Shuffles per feature (the spread is their standard deviation) and their seed.
REPEATS = 3
SEED = 0


def rank_ic(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation of ``model.predict(X)`` with ``y`` (0 when undefined)."""
    ic = spearmanr(model.predict(X), y).statistic
    return float(ic) if np.isfinite(ic) else 0.0


def permutation_ic(
    model: Any, X: np.ndarray, y: np.ndarray, *, repeats: int = REPEATS, seed: int = SEED
) -> np.ndarray:
    """Drop in rank IC per feature and repeat, shape ``(n_features, repeats)``."""
    from sklearn.inspection import permutation_importance  # lazy: scikit-learn

    res = permutation_importance(model, X, y, scoring=rank_ic, n_repeats=repeats,
                                 random_state=seed)  # fmt: skip
    return np.asarray(res.importances, dtype=float)


@dataclass
class NetworkImportance:
    """The planner's ``on_retrain`` hook: keeps the latest retrain; :meth:`compute` measures it.

    ``mean`` / ``spread`` (per feature): the drop in rank IC averaged over the symbols' networks,
    then its mean and standard deviation over the repeats.
    """

    horizon_days: int
    book: Any = None
    day: date | None = None
    report: Any = None
    n_models: int = 0
    mean: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)

    def __call__(self, day: date, report: Any) -> None:
        if any(hasattr(m, "nn_") for m in (getattr(report, "models", None) or {}).values()):
            self.day, self.report = day, report

    def compute(self, store: Any) -> NetworkImportance:
        """Measure the latest retrain's networks on their training rows (once)."""
        if self.report is None or self.mean:
            return self
        from sentinel.ml.dataset import samples_to_arrays
        from sentinel.ml_features import FEATURE_NAMES

        models = {s: m.nn_ for s, m in self.report.models.items() if hasattr(m, "nn_")}
        view = store.view(self.day)
        samples = view.signals.get_training_samples(known_by=self.day,
                                                    horizon_days=self.horizon_days)  # fmt: skip
        samples = samples[samples["symbol"].isin(set(models))]
        if self.book is not None and len(samples):
            samples = self.book.with_book_features(samples, view)
        names = list(getattr(self.report, "features", None) or FEATURE_NAMES)
        drops = []
        for sym, (X, y, _) in samples_to_arrays(samples).items():
            nn = models[sym]
            if X.shape[1] == getattr(nn, "n_features_in_", X.shape[1]) == len(names) and len(y) > 2:
                drops.append(permutation_ic(nn, X, y))
        if drops:
            per_repeat = np.mean(drops, axis=0)  # (features, repeats), averaged over symbols
            order = np.argsort(-per_repeat.mean(axis=1), kind="stable")
            self.n_models = len(drops)
            self.mean = {names[i]: float(per_repeat[i].mean()) for i in order}
            self.spread = {names[i]: float(per_repeat[i].std()) for i in order}
        return self
