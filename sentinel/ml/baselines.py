"""The one baseline set every model figure is shown next to (validation and evaluation alike).

A model figure means little alone: a network whose rank IC is 0.02 is worse than useless when
a 20-day reversal ranks the same stocks at 0.03. Four naive forecasts of the horizon's return,
each computed from the same 20 features (:data:`sentinel.ml_features.FEATURE_NAMES`) the models
see, with the convention *higher = expected higher return*:

- ``zero``: no change (the RMSE bar; it ranks nothing, so its IC is undefined);
- ``reversal_20``: minus the 20-day return, scaled to the horizon (short-term reversal);
- ``momentum_60``: the 60-day return, scaled to the horizon (medium-term momentum);
- ``ridge``: a ridge regression on the same 20 features, standardised, fitted per symbol on the
  same training rows as that symbol's model (so it differs from the model only in being linear).

The scaling to the horizon (trading days of the horizon / trading days of the window) only
matters for RMSE/MAE; ranks and signs are those of the raw returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml._scaler import standard_moments
from sentinel.ml.errors import ModelError
from sentinel.ml_features import FEATURE_NAMES

#: The baseline names, in display order.
BASELINES: tuple[str, ...] = ("zero", "reversal_20", "momentum_60", "ridge")
#: The baselines that need no fitting (functions of one day's features).
RULE_BASELINES: tuple[str, ...] = ("zero", "reversal_20", "momentum_60")
#: Ridge penalty on standardised features (sklearn's default; not tuned, by design: a baseline).
RIDGE_ALPHA = 1.0

_R20 = FEATURE_NAMES.index("return_20d")
_R60 = FEATURE_NAMES.index("return_60d")


def horizon_trading_days(horizon_days: int) -> int:
    """Calendar horizon in trading days (5 per 7 calendar days)."""
    return max(1, round(horizon_days * 5 / 7))


def _matrix(X: ArrayLike) -> np.ndarray:
    """The 20 default columns: a run's ``ml.features`` start with them (extras come after)."""
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2 or Xa.shape[1] < len(FEATURE_NAMES):
        raise ModelError(
            f"baselines need the {len(FEATURE_NAMES)} features per row, got shape {Xa.shape}"
        )
    return Xa[:, : len(FEATURE_NAMES)]


def rule_predictions(X: ArrayLike, horizon_days: int = 14) -> dict[str, np.ndarray]:
    """``zero``, ``reversal_20`` and ``momentum_60`` forecasts of the horizon's return."""
    Xa = _matrix(X)
    h = horizon_trading_days(horizon_days)
    return {
        "zero": np.zeros(len(Xa)),
        "reversal_20": -Xa[:, _R20] * h / 20.0,
        "momentum_60": Xa[:, _R60] * h / 60.0,
    }


@dataclass(frozen=True)
class RidgeBaseline:
    """A fitted ridge baseline: the numbers of scikit-learn's ``StandardScaler`` then
    ``Ridge(alpha)`` (their ``mean_``, ``scale_``, ``coef_``, ``intercept_``)."""

    mean_: np.ndarray
    scale_: np.ndarray
    coef_: np.ndarray
    intercept_: float

    def predict(self, X: ArrayLike) -> np.ndarray:
        """``Ridge.predict(StandardScaler.transform(X[:, :20]))``, the same operations."""
        Xs = _matrix(X) - self.mean_
        Xs /= self.scale_
        return Xs @ self.coef_ + self.intercept_


def fit_ridge(X: ArrayLike, y: ArrayLike, alpha: float = RIDGE_ALPHA) -> RidgeBaseline:
    """Standardised ridge regression fitted on one symbol's training rows.

    The first 20 columns are used, so rows of a run with added features (``ml.features``) can
    be scored by a ridge fitted on stored 20-feature samples. The usual case (finite rows, more
    rows than features) runs scikit-learn's own arithmetic in numpy, step by step
    (:func:`_fit_standardised_ridge`): a report and every training fit hundreds of these, and
    the estimators' input checks cost ten times the fit. The tests hold the result equal, to
    the bit, to ``make_pipeline(StandardScaler(), Ridge(alpha)).fit``; any other case is fitted
    by that pipeline itself.
    """
    Xa, ya = _matrix(X), np.asarray(y, dtype=np.float64).reshape(-1)
    if len(Xa) != len(ya) or len(ya) < 2:
        raise ModelError(f"ridge baseline needs >= 2 rows with labels, got {len(Xa)}/{len(ya)}")
    if len(ya) > Xa.shape[1] and np.isfinite(Xa).all() and np.isfinite(ya).all():
        from scipy.linalg import LinAlgError  # lazy: scipy costs seconds to import

        try:
            return _fit_standardised_ridge(Xa, ya, alpha)
        except LinAlgError:
            pass  # scikit-learn falls back to its SVD solver; let it
    from sklearn.linear_model import Ridge  # lazy: sklearn costs a second to import
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fitted = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(Xa, ya)
    scaler, ridge = fitted[0], fitted[-1]
    return RidgeBaseline(scaler.mean_, scaler.scale_, ridge.coef_, ridge.intercept_)


def _fit_standardised_ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> RidgeBaseline:
    """scikit-learn 1.x's ``StandardScaler().fit`` (``_incremental_mean_and_var`` from an empty
    start, near-constant columns scaled by 1) and ``Ridge(alpha).fit`` (centring, then the
    ``cholesky`` solver) on finite rows, n > features, in the same operations and order."""
    from scipy import linalg  # lazy: scipy costs seconds to import

    p = X.shape[1]
    mean, _, scale = standard_moments(X)
    Xs = X - mean
    Xs /= scale
    x_offset = np.average(Xs, axis=0)
    Xs -= x_offset
    yc = y.copy()
    y_offset = np.average(yc, axis=0)
    yc -= y_offset
    A = Xs.T @ Xs
    Xy = Xs.T @ yc.reshape(-1, 1)
    A.flat[:: p + 1] += np.float64(alpha)
    coef = linalg.solve(A, Xy, assume_a="pos", overwrite_a=True).T.ravel()
    return RidgeBaseline(mean, scale, coef, y_offset - x_offset @ coef)


def ridge_weights(model: RidgeBaseline) -> tuple[np.ndarray, float]:
    """``(w, b)`` with ``model.predict(X) == X[:, :20] @ w + b``: scoring many rows of many
    symbols' ridges at once is one matrix product per day instead of one call per row."""
    w = model.coef_ / model.scale_
    return w, float(model.intercept_ - model.mean_ @ w)


def baseline_predictions(
    X: ArrayLike,
    horizon_days: int = 14,
    *,
    X_train: ArrayLike | None = None,
    y_train: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """Every baseline's forecast for the rows ``X``; ``ridge`` only when training rows are given."""
    out = rule_predictions(X, horizon_days)
    if X_train is not None and y_train is not None:
        out["ridge"] = fit_ridge(X_train, y_train).predict(_matrix(X))
    return out
