"""50/50 NN + XGBoost ensemble of the design notes, with the same contract as its members."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml._base import BaseModel
from sentinel.ml.errors import ModelError, NotFittedError
from sentinel.ml.nn import NNRegressor
from sentinel.ml.xgb import XGBRegressorModel


def clone(model: Any) -> Any:
    """Unfitted copy with the same hyperparameters (sklearn's ``clone``, minus the magic)."""
    return type(model)(**model.get_params())


class EnsembleModel(BaseModel):
    """Weighted average of a network and a booster (``nn_weight`` 0.5 in the notes).

    Parameters
    ----------
    nn, xgb
        Unfitted member templates (hyperparameters only); ``fit`` fits copies of them into
        ``nn_`` and ``xgb_``.
    nn_weight
        Share of the network in the average.
    """

    kind = "ensemble"

    def __init__(
        self,
        nn: NNRegressor | None = None,
        xgb: XGBRegressorModel | None = None,
        nn_weight: float = 0.5,
    ) -> None:
        self.nn = nn
        self.xgb = xgb
        self.nn_weight = nn_weight

    def fit(self, X: ArrayLike, y: ArrayLike) -> EnsembleModel:
        """Fit both members on the same rows."""
        if not 0.0 <= self.nn_weight <= 1.0:
            raise ModelError(f"nn_weight must be in [0, 1], got {self.nn_weight}")
        nn = clone(self.nn) if self.nn is not None else NNRegressor()
        xgb = clone(self.xgb) if self.xgb is not None else XGBRegressorModel()
        return self.set_members(nn.fit(X, y), xgb.fit(X, y))

    def set_members(self, nn: NNRegressor, xgb: XGBRegressorModel) -> EnsembleModel:
        """Install already fitted members (batched training, loading from the store)."""
        if nn.n_features_in_ != xgb.n_features_in_:
            raise ModelError(
                f"members disagree on features: nn {nn.n_features_in_}, xgb {xgb.n_features_in_}"
            )
        self.nn_ = nn
        self.xgb_ = xgb
        self.n_features_in_ = nn.n_features_in_
        return self

    def predict_components(self, X: ArrayLike) -> dict[str, np.ndarray]:
        """``{"nn", "xgb", "ensemble"}`` predictions (validation reports all three)."""
        if not hasattr(self, "nn_"):
            raise NotFittedError(self)
        p_nn = self.nn_.predict(X)
        p_xgb = self.xgb_.predict(X)
        w = float(self.nn_weight)
        return {"nn": p_nn, "xgb": p_xgb, "ensemble": w * p_nn + (1.0 - w) * p_xgb}

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Weighted average of the members' predicted returns."""
        return self.predict_components(X)["ensemble"]
