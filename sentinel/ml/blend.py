"""Pure mapping of a predicted return to a score, and the wavelet/ML blend of the design notes."""

from __future__ import annotations

import sys

import numpy as np
from numpy.typing import ArrayLike


def return_to_score(r: ArrayLike) -> np.ndarray | float:
    """Map a predicted return to [0, 1]: -10 % -> 0, 0 % -> 0.5, +10 % -> 1 (clipped).

    Scalars give a float, arrays an array of the same shape; NaN stays NaN so a missing
    prediction is never silently read as a neutral 0.5.
    """
    out = np.clip((np.asarray(r, dtype=float) + 0.10) / 0.20, 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def blend(wavelet: ArrayLike, ml: ArrayLike, ratio: float) -> np.ndarray | float:
    """``(1 - ratio) * wavelet + ratio * ml``; ``ratio`` 0 is pure wavelet, 1 pure ML.

    Raises
    ------
    ValueError
        If ``ratio`` is outside [0, 1], which would extrapolate rather than blend.
    """
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"blend ratio must be in [0, 1], got {ratio!r}")
    out = (1.0 - ratio) * np.asarray(wavelet, dtype=float) + ratio * np.asarray(ml, dtype=float)
    return float(out) if out.ndim == 0 else out


def blend_scores(wavelet: ArrayLike, ml: ArrayLike, ratio: float) -> np.ndarray:
    """The blended score column: the blend where a symbol has an ML score, else its wavelet score.

    The one place the planner and the sweep's replay of cached scores turn the two scores into
    the ranking score, so a replayed point equals a standalone run. Takes Series or arrays (a
    missing ML score is NaN or None).
    """
    wav, score = _floats(wavelet), _floats(ml)
    has = ~np.isnan(score)
    return np.where(has, blend(wav, np.where(has, score, 0.0), ratio), wav)


def _floats(values: ArrayLike) -> np.ndarray:
    # pandas is not imported here: `sentinel.ml` imports this module, and the network-training
    # process (sentinel.ml.nn_worker) starts with that package; a Series implies pandas is loaded
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(values, pd.Series):
        return values.astype("float64").to_numpy()
    return np.asarray(values, dtype="float64")
