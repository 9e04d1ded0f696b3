"""The model contract's three implementations, importable from one place.

Every model (a :class:`~sentinel.ml._base.BaseModel`): hyperparameters only in ``__init__``
(``get_params`` reads them off its signature), ``fit(X, y) -> self``, fitted state in
attributes ending ``_``, ``predict(X) -> 1-D ndarray``; bad input raises
:class:`~sentinel.ml.errors.ModelError`, an unfitted ``predict`` raises
:class:`~sentinel.ml.errors.NotFittedError`.
"""

from sentinel.ml._base import BaseModel
from sentinel.ml.ensemble import EnsembleModel, clone
from sentinel.ml.nn import NNRegressor
from sentinel.ml.xgb import XGBRegressorModel

__all__ = ["BaseModel", "EnsembleModel", "NNRegressor", "XGBRegressorModel", "clone"]
