"""Validation that does not leak: most recent block, purge + embargo, metrics against baselines.

Weekly samples with 14-day labels overlap, so a random split puts near-copies of a sample on both
sides and flatters the model. Here the validation block is the most recent ~20 % of samples by
date; a training sample is kept only if its label window ``[T, T + horizon]`` ends before the
block starts, with one more horizon of embargo: ``T + horizon + embargo < first validation date``.
Every model is scored next to the baseline set of :mod:`sentinel.ml.baselines` (zero, 20-day
reversal, 60-day momentum, ridge on the same features fitted on the same training rows) so a
figure can be judged, and a shuffled split is reported only as a leakage diagnostic. Stored
reports from before that set (baselines ``zero`` and ``momentum``) still load: the readers here
average whatever baselines a report holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml.baselines import baseline_predictions
from sentinel.ml.ensemble import EnsembleModel, clone
from sentinel.ml.errors import ModelError

METRIC_KEYS = ("rmse", "mae", "r2", "ic", "hit_rate")


def to_days(dates: ArrayLike) -> np.ndarray:
    """Sample dates as ``datetime64[D]`` (accepts dates, strings, pandas timestamps)."""
    try:
        arr = np.asarray(dates)
        if arr.dtype == object:
            arr = np.array([np.datetime64(str(d)[:10]) for d in arr.ravel()])
        return arr.astype("datetime64[D]").reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"sample dates are not dates: {exc}") from exc


@dataclass(frozen=True)
class PurgedSplit:
    """Indices into the caller's arrays (each sorted by date) and what the split removed."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    purged_idx: np.ndarray
    val_start: np.datetime64
    horizon_days: int
    embargo_days: int

    def summary(self) -> dict[str, Any]:
        """JSON-able description for metadata."""
        return {
            "n_train": int(len(self.train_idx)),
            "n_validation": int(len(self.val_idx)),
            "n_purged": int(len(self.purged_idx)),
            "validation_start": str(self.val_start),
            "horizon_days": self.horizon_days,
            "embargo_days": self.embargo_days,
        }


def purged_split(
    dates: ArrayLike,
    horizon_days: int = 14,
    *,
    val_fraction: float = 0.2,
    embargo_days: int | None = None,
) -> PurgedSplit:
    """Most-recent-block split with purge and embargo (``embargo_days`` defaults to the horizon).

    Raises
    ------
    ModelError
        If the fraction is not in (0, 1) or nothing is left to train on.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ModelError(f"val_fraction must be in (0, 1), got {val_fraction}")
    d = to_days(dates)
    n = len(d)
    if n < 2:
        raise ModelError(f"too few samples to split: {n}")
    embargo = int(horizon_days if embargo_days is None else embargo_days)
    order = np.argsort(d, kind="stable")
    n_val = max(1, int(math.ceil(n * val_fraction)))
    val_start = d[order[n - n_val]]
    val_idx = order[d[order] >= val_start]
    gap = np.timedelta64(int(horizon_days) + embargo, "D")
    before = order[d[order] < val_start]
    keep = d[before] + gap < val_start
    train_idx, purged_idx = before[keep], before[~keep]
    if len(train_idx) == 0:
        raise ModelError(
            f"no training samples left before {val_start} after purging {len(purged_idx)} "
            f"(horizon {horizon_days} + embargo {embargo} days)"
        )
    return PurgedSplit(train_idx, val_idx, purged_idx, val_start, int(horizon_days), embargo)


def shuffled_split(
    n: int, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random split: the *wrong* way on overlapping labels, kept only as a leakage diagnostic."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(math.ceil(n * val_fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def average_ranks(x: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(x)`` of a 1-D array (ties share their mean rank; any NaN: all NaN).

    The same exact values in a few numpy calls: each training validates several models and four
    baselines, and scipy's general rankdata (axes, policies) cost most of each IC.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if np.isnan(x).any():
        return np.full(len(x), np.nan)
    order = np.argsort(x)
    y = x[order]
    first = np.flatnonzero(np.concatenate([[True], y[1:] != y[:-1]]))  # each tie group's start
    counts = np.diff(first, append=len(x))
    out = np.empty(len(x))
    out[order] = np.repeat(first + 1 + (counts - 1) / 2, counts)
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float | int | None]:
    """RMSE, MAE, R2, rank IC (Spearman) and hit rate (sign agreement), JSON-able.

    Undefined figures are ``None`` rather than NaN (JSON has no NaN): R2 when the labels are
    constant, IC and hit rate when the predictions are constant (a constant predictor ranks
    nothing and has no direction: scoring the zero baseline's hit rate as 0 would mislead).
    """
    yt = np.asarray(y_true, dtype=np.float64).reshape(-1)
    yp = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if yt.shape != yp.shape or len(yt) == 0:
        raise ModelError(f"metrics need equal non-empty arrays, got {yt.shape} and {yp.shape}")
    err = yp - yt
    sst = float(np.sum((yt - yt.mean()) ** 2))
    constant_pred = np.ptp(yp) == 0
    return {
        "n": int(len(yt)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": None if sst == 0 else float(1.0 - np.sum(err**2) / sst),
        "ic": _spearman(yp, yt),
        "hit_rate": None if constant_pred else float(np.mean(np.sign(yp) == np.sign(yt))),
    }


def validation_report(
    y_val: ArrayLike,
    predictions: Mapping[str, ArrayLike],
    X_val: ArrayLike,
    split: PurgedSplit,
    *,
    X_train: ArrayLike | None = None,
    y_train: ArrayLike | None = None,
    shuffled: Mapping[str, Any] | None = None,
    n_trained: int | None = None,
) -> dict[str, Any]:
    """Per-symbol JSON-able metrics: models, baselines, split summary, leakage diagnostic.

    The top-level ``validation_*`` keys are the ensemble's, as the notes' API shows them;
    ``training_samples`` is how many rows the final model was fitted on. ``X_train``/``y_train``
    are the rows the validated model was fitted on: the ridge baseline is fitted on the same.
    """
    models = {k: regression_metrics(y_val, p) for k, p in predictions.items()}
    base = baseline_predictions(X_val, split.horizon_days, X_train=X_train, y_train=y_train)
    report: dict[str, Any] = {
        "split": split.summary(),
        "models": models,
        "baselines": {k: regression_metrics(y_val, p) for k, p in base.items()},
        "shuffled_split": dict(shuffled) if shuffled is not None else None,
        "training_samples": int(n_trained if n_trained is not None else len(split.train_idx)),
    }
    head = models.get("ensemble") or next(iter(models.values()))
    for key in METRIC_KEYS:
        report[f"validation_{key}"] = head[key]
    return report


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(vals)) if vals else None


def aggregate_metrics(per_symbol: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Averages over symbols for ``/api/ml/status`` plus IC, hit rate and the baselines'.

    Undefined per-symbol figures (``None``) are left out of the averages, not counted as 0.
    """
    items = [m for m in per_symbol if m]
    out: dict[str, Any] = {
        "avg_validation_rmse": _mean(m.get("validation_rmse") for m in items),
        "avg_validation_mae": _mean(m.get("validation_mae") for m in items),
        "avg_validation_r2": _mean(m.get("validation_r2") for m in items),
        "avg_validation_ic": _mean(m.get("validation_ic") for m in items),
        "avg_validation_hit_rate": _mean(m.get("validation_hit_rate") for m in items),
        "total_trained_samples": int(sum(int(m.get("training_samples", 0)) for m in items)),
        "n_symbols": len(items),
    }
    names = sorted({k for m in items for k in (m.get("baselines") or {})})
    out["baselines"] = {
        name: {
            f"avg_validation_{key}": _mean(
                (m.get("baselines") or {}).get(name, {}).get(key) for m in items
            )
            for key in METRIC_KEYS
        }
        for name in names
    }
    shuffled = [m["shuffled_split"] for m in items if m.get("shuffled_split")]
    out["shuffled_split_avg_r2"] = _mean(s.get("r2") for s in shuffled)
    return out


def validate_symbol(
    X: ArrayLike,
    y: ArrayLike,
    dates: ArrayLike,
    *,
    model: Any = None,
    horizon_days: int = 14,
    val_fraction: float = 0.2,
    embargo_days: int | None = None,
    leakage_diagnostic: bool = True,
) -> dict[str, Any]:
    """Purged validation of one symbol with single (non-batched) fits; see ``train_many``.

    ``model`` is an unfitted template (default :class:`EnsembleModel`); it is cloned per fit.
    """
    template = model if model is not None else EnsembleModel()
    Xa, ya = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    split = purged_split(dates, horizon_days, val_fraction=val_fraction, embargo_days=embargo_days)
    fitted = clone(template).fit(Xa[split.train_idx], ya[split.train_idx])
    Xv = Xa[split.val_idx]
    preds = (
        fitted.predict_components(Xv)
        if hasattr(fitted, "predict_components")
        else {"model": fitted.predict(Xv)}
    )
    shuffled = None
    if leakage_diagnostic:
        tr, va = shuffled_split(len(ya), val_fraction)
        order = np.argsort(to_days(dates), kind="stable")
        tr, va = order[tr], order[va]
        shuf = clone(template).fit(Xa[tr], ya[tr])
        shuffled = regression_metrics(ya[va], shuf.predict(Xa[va]))
    tr = split.train_idx
    return validation_report(
        ya[split.val_idx], preds, Xv, split, X_train=Xa[tr], y_train=ya[tr], shuffled=shuffled
    )
