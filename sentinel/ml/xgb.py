"""XGBoost per-symbol regressor with the notes' hyperparameters and the shared model contract."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml._base import BaseModel
from sentinel.ml._checks import MIN_SAMPLES, check_X, check_Xy, fit_scaler
from sentinel.ml.errors import NotFittedError


class XGBRegressorModel(BaseModel):
    """Gradient-boosted trees (150 x depth 4, lr 0.05, subsample/colsample 0.8), sklearn-style.

    The inputs are standardised like the network's although trees do not need it: one contract
    (and one scaler file format) for every model keeps training and the store uniform.
    ``n_jobs`` defaults to 1 because callers parallelise across symbols, not within one.
    """

    kind = "xgb"

    def __init__(
        self,
        n_estimators: int = 150,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        random_state: int = 0,
        n_jobs: int = 1,
        min_samples: int = MIN_SAMPLES,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.min_samples = min_samples

    def _booster_params(self) -> dict[str, Any]:
        return {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_depth": int(self.max_depth),
            "eta": float(self.learning_rate),
            "subsample": float(self.subsample),
            "colsample_bytree": float(self.colsample_bytree),
            "seed": int(self.random_state),
            "nthread": int(self.n_jobs),
            "verbosity": 0,
        }

    def fit(self, X: ArrayLike, y: ArrayLike) -> XGBRegressorModel:
        """Fit the booster on standardised ``X`` (scaler fitted on these rows only)."""
        import xgboost as xgb  # lazy: keeps `import sentinel.ml.models` light

        Xa, ya = check_Xy(X, y, min_samples=self.min_samples)
        mean, scale = fit_scaler(Xa)
        dtrain = xgb.DMatrix((Xa - mean) / scale, label=ya)
        booster = xgb.train(self._booster_params(), dtrain, num_boost_round=int(self.n_estimators))
        return self._set_state(booster, mean, scale, n_samples=len(ya))

    def _set_state(
        self, booster: Any, mean: np.ndarray, scale: np.ndarray, *, n_samples: int
    ) -> XGBRegressorModel:
        self.booster_ = booster
        self.scaler_mean_ = np.asarray(mean, dtype=np.float64)
        self.scaler_scale_ = np.asarray(scale, dtype=np.float64)
        self.n_features_in_ = int(self.scaler_mean_.shape[0])
        self.n_samples_ = int(n_samples)
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted horizon return per row."""
        if not hasattr(self, "booster_"):
            raise NotFittedError(self)
        Xa = check_X(X, self.n_features_in_)
        Xs = (Xa - self.scaler_mean_) / self.scaler_scale_
        return np.asarray(self.booster_.inplace_predict(Xs), dtype=np.float64).reshape(-1)
