"""Per-symbol ML layer: NN + XGBoost ensembles, batched training, validation, store, predictor.

Kept light on purpose: importing ``sentinel.ml`` must not import TensorFlow (a multi-second cost
that the API, the CLI and most tests never need). Import the heavy pieces from their modules,
e.g. ``from sentinel.ml.models import NNRegressor``.
"""

from sentinel.ml.blend import blend, return_to_score
from sentinel.ml.errors import MLError, ModelError, ModelLoadError, NotFittedError

__all__ = [
    "MLError",
    "ModelError",
    "ModelLoadError",
    "NotFittedError",
    "blend",
    "return_to_score",
]
