"""Feature scaling with scikit-learn's ``StandardScaler``, stored as JSON (never pickled).

Why a module: every model (network, booster, pooled) standardises its inputs the same way, and
the model store must write and read the scaler without unpickling anything. The JSON keeps the
fitted attributes sklearn needs to ``transform``; files written before this module (only
``mean`` and ``scale``) load into the same scaler, so stored models stay usable.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

SCALER_CLASS = "sklearn.preprocessing.StandardScaler"
_IMPORT_LOCK = threading.Lock()


def scaler_class() -> type[StandardScaler]:
    """sklearn's StandardScaler, imported once under a lock.

    Lazy (keeps model imports light), and locked because the trainer fits boosters in worker
    threads: two threads importing scikit-learn at once were seen to fail with "partially
    initialized module".
    """
    with _IMPORT_LOCK:
        from sklearn.preprocessing import StandardScaler  # lazy: see above

    return StandardScaler


def fit_scaler(X: np.ndarray) -> StandardScaler:
    """A ``StandardScaler`` fitted on ``X`` (ddof 0; a constant column gets scale 1)."""
    return scaler_class()().fit(np.asarray(X, dtype=np.float64))


def scaler_from_arrays(mean: Any, scale: Any, n_samples: int = 0) -> StandardScaler:
    """A fitted ``StandardScaler`` with the given mean and scale (no data needed)."""
    sc = scaler_class()()
    sc.mean_ = np.asarray(mean, dtype=np.float64)
    sc.scale_ = np.asarray(scale, dtype=np.float64)
    sc.var_ = sc.scale_**2
    sc.n_features_in_ = int(sc.mean_.shape[0])
    sc.n_samples_seen_ = int(n_samples)
    return sc


def scaler_to_json(sc: StandardScaler) -> dict[str, Any]:
    """The fitted attributes of ``sc`` as a JSON-ready dict."""
    return {
        "class": SCALER_CLASS,
        "mean": sc.mean_.tolist(),
        "scale": sc.scale_.tolist(),
        "n_samples_seen": int(np.max(sc.n_samples_seen_)),
    }


def scaler_from_json(obj: dict[str, Any], n_features: int) -> StandardScaler:
    """Rebuild a scaler written by :func:`scaler_to_json` (or a legacy mean/scale file).

    Raises ``ValueError`` naming what does not fit, for the store to turn into a load error.
    """
    cls = obj.get("class", SCALER_CLASS)
    if cls != SCALER_CLASS:
        raise ValueError(f"unknown scaler class {cls!r}; retrain the model")
    try:
        mean = np.asarray(obj["mean"], dtype=np.float64)
        scale = np.asarray(obj["scale"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"lacks numeric mean/scale: {exc}") from exc
    if mean.shape != (n_features,) or scale.shape != (n_features,) or not np.all(scale > 0):
        raise ValueError(f"does not fit {n_features} features")
    return scaler_from_arrays(mean, scale, int(obj.get("n_samples_seen", 0)))


class ScaledInputs:
    """Mixin for models that standardise inputs with ``self.scaler_`` (set by ``fit``): the
    fitted mean and scale under the names model files and tests read."""

    scaler_: StandardScaler

    @property
    def scaler_mean_(self) -> np.ndarray:
        return self.scaler_.mean_

    @property
    def scaler_scale_(self) -> np.ndarray:
        return self.scaler_.scale_
