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
    """A ``StandardScaler`` fitted on ``X`` (ddof 0; a constant column gets scale 1).

    Finite 2-D input (every training path: :func:`~sentinel.ml._checks.check_Xy` ran first)
    gets scikit-learn's fit arithmetic in numpy (:func:`standard_moments`) on a real
    ``StandardScaler``: a walk-forward run fits ~1,500 scalers, and the estimator's input
    checks cost more than the sums. Anything else goes through ``StandardScaler.fit`` itself.
    """
    Xa = np.asarray(X, dtype=np.float64)
    sc = scaler_class()()
    if Xa.ndim != 2 or len(Xa) == 0 or not np.isfinite(Xa).all():
        return sc.fit(Xa)
    sc.mean_, sc.var_, sc.scale_ = standard_moments(Xa)
    sc.n_features_in_ = int(Xa.shape[1])
    sc.n_samples_seen_ = np.float64(len(Xa))  # what scikit-learn 1.x stores
    return sc


def standard_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, var, scale) of finite rows ``X`` as scikit-learn 1.x's ``StandardScaler().fit``
    computes them (``_incremental_mean_and_var`` from an empty start; near-constant columns get
    scale 1), in the same operations and order: the tests hold them equal to the bit."""
    count = np.float64(len(X)) - np.sum(np.isnan(X).astype(X.dtype), axis=0)
    new_sum = np.sum(X, axis=0)
    mean = (np.float64(0.0) + new_sum) / (np.float64(0.0) + count)
    temp = X - new_sum / count
    correction = np.sum(temp, axis=0)
    temp **= 2
    unnormalised = np.sum(temp, axis=0)
    unnormalised -= correction**2 / count
    var = unnormalised / (np.float64(0.0) + count)
    eps, seen = np.finfo(np.float64).eps, count[0]
    scale = np.sqrt(var)
    scale[var <= seen * eps * var + (seen * mean * eps) ** 2] = 1.0
    return mean, var, scale


def standardise(sc: StandardScaler, X: np.ndarray) -> np.ndarray:
    """``sc.transform(X)`` for finite float64 rows: the same two in-place operations on a copy,
    without the estimator's per-call input checks (hot in training and prediction)."""
    out = np.array(X, dtype=np.float64)
    out -= sc.mean_
    out /= sc.scale_
    return out


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
