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

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

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


def fit_ridge(X: ArrayLike, y: ArrayLike, alpha: float = RIDGE_ALPHA) -> Any:
    """Standardised ridge regression fitted on one symbol's training rows (sklearn pipeline)."""
    from sklearn.linear_model import Ridge  # lazy: sklearn costs a second to import
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    Xa, ya = _matrix(X), np.asarray(y, dtype=np.float64).reshape(-1)
    if len(Xa) != len(ya) or len(ya) < 2:
        raise ModelError(f"ridge baseline needs >= 2 rows with labels, got {len(Xa)}/{len(ya)}")
    # The first step keeps the 20 defaults, so rows of a run with added features (ml.features)
    # can be scored by a ridge fitted on stored 20-feature samples.
    pipeline = make_pipeline(FunctionTransformer(_matrix), StandardScaler(), Ridge(alpha=alpha))
    return pipeline.fit(Xa, ya)


def ridge_weights(model: Any) -> tuple[np.ndarray, float]:
    """``(w, b)`` with ``model.predict(X) == X[:, :20] @ w + b``: scoring many rows of many
    symbols' ridges at once is one matrix product per day instead of one sklearn call per row."""
    scaler, ridge = model[-2], model[-1]
    w = ridge.coef_ / scaler.scale_
    return w, float(ridge.intercept_ - scaler.mean_ @ w)


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
