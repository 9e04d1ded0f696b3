"""The model contract's three implementations, importable from one place.

Every model: hyperparameters only in ``__init__``, ``fit(X, y) -> self``, fitted state in
attributes ending ``_``, ``predict(X) -> 1-D ndarray``; bad input raises
:class:`~sentinel.ml.errors.ModelError`, an unfitted ``predict`` raises
:class:`~sentinel.ml.errors.NotFittedError`.
"""

from sentinel.ml.ensemble import EnsembleModel, clone
from sentinel.ml.nn import NNRegressor
from sentinel.ml.xgb import XGBRegressorModel

__all__ = ["EnsembleModel", "NNRegressor", "XGBRegressorModel", "clone"]
