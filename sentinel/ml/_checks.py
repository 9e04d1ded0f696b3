"""Input checks shared by every model: fail early with a clear ModelError, not deep inside TF."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml.errors import ModelError

MIN_SAMPLES = 10


def check_X(X: ArrayLike, n_features: int | None = None, *, what: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 2-D array, checking its width against ``n_features``."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what} must be numeric: {exc}") from exc
    if arr.ndim == 1 and n_features is not None and arr.shape[0] == n_features:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ModelError(f"{what} must be 2-D (samples, features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ModelError(f"{what} has {arr.shape[1]} features, the model expects {n_features}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ModelError(
            f"{what} contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "drop or impute warm-up rows before fitting or predicting"
        )
    return arr


def check_Xy(
    X: ArrayLike, y: ArrayLike, *, min_samples: int = MIN_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training set: finite, aligned, enough rows, labels that vary."""
    Xa = check_X(X)
    try:
        ya = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"y must be numeric: {exc}") from exc
    if ya.shape[0] != Xa.shape[0]:
        raise ModelError(f"X has {Xa.shape[0]} rows but y has {ya.shape[0]}")
    if not np.isfinite(ya).all():
        raise ModelError("y contains NaN or inf: labels whose horizon has not passed are unknown")
    if Xa.shape[0] < min_samples:
        raise ModelError(f"too few samples to fit: {Xa.shape[0]} < {min_samples}")
    if np.ptp(ya) == 0.0:
        raise ModelError(f"labels are constant ({ya[0]!r}): nothing to learn")
    return Xa, ya


def fit_scaler(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale like sklearn's StandardScaler (ddof=0, zero spread -> scale 1)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale < 10 * np.finfo(np.float64).eps, 1.0, scale)
    return mean, scale
