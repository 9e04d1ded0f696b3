"""Model kinds beyond the per-symbol ensemble, and cross-sectional targets.

The design notes train one network + booster per security ("securities differ"). These kinds
test that claim instead of assuming it:

- ``pooled``: one ensemble over every symbol's samples. Its inputs are standardised across the
  universe on each date (a z-score per feature and date), so it learns how a stock compares with
  the others that day, and it scores every symbol, including ones with little history.
- ``hierarchical``: the pooled model plus a per-symbol ensemble fitted on the pooled model's
  residuals, added with weight ``n / (n + min_samples)``: a symbol with little data leans on the
  pool, one with much data moves towards its own model. Symbols below ``min_samples`` get the
  pooled prediction alone. The residuals are in-sample ones (the pooled model saw those rows),
  a simplification: out-of-fold pooled predictions would be stricter.

Targets (``ml.target``): ``return`` (the notes' horizon return), ``excess`` (over the mean of the
symbols sampled that date) and ``rank`` (the cross-sectional percentile ``p``, stored as
``0.2 * (p - 0.5)`` so that :func:`~sentinel.ml.blend.return_to_score` maps a prediction back to
the percentile itself: the ML score of a rank model is its predicted percentile).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sentinel.ml._checks import check_X
from sentinel.ml.batched import train_many
from sentinel.ml.errors import ModelError
from sentinel.ml.nn import NNRegressor
from sentinel.ml.xgb import XGBRegressorModel

MODEL_KINDS = ("per_symbol", "pooled", "hierarchical")
TARGETS = ("return", "excess", "rank")
#: Name of the pooled model wherever a per-symbol name is expected (reports, folders).
POOLED = "_pooled"
#: Mini-batch of the pooled network: ~100k rows at 32 a step would cost minutes per retrain
#: (bench ml_pooled measures one retrain over 366 symbols x 250 samples).
POOLED_BATCH = 2048


def cross_sectional_z(X: ArrayLike, dates: ArrayLike) -> np.ndarray:
    """Each feature standardised across the rows sharing a date (ddof 0; no spread -> 0)."""
    Xa = np.asarray(X, dtype=np.float64)
    frame = pd.DataFrame(Xa)
    g = frame.groupby(np.asarray(dates), sort=False)
    mean = g.transform("mean").to_numpy()
    std = g.transform("std", ddof=0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 1e-12, (Xa - mean) / std, 0.0)
    return z


def transform_target(y: ArrayLike, dates: ArrayLike, target: str) -> np.ndarray:
    """The label for ``target`` from horizon returns ``y``, cross-sections taken per date."""
    ya = np.asarray(y, dtype=np.float64)
    if target == "return":
        return ya
    s = pd.Series(ya)
    g = s.groupby(np.asarray(dates), sort=False)
    if target == "excess":
        return (s - g.transform("mean")).to_numpy()
    if target == "rank":
        return (0.2 * (g.rank(pct=True) - 0.5)).to_numpy()
    raise ModelError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


@dataclass
class PooledPredictor:
    """Scores a day's universe with the pooled model (plus residual models if hierarchical).

    Same call as :meth:`sentinel.ml.predictor.Predictor.predict_batch`; the rows passed
    together are the cross-section the inputs are standardised over, so a day's universe must be
    scored in one call (the planner does).
    """

    pooled: Any
    residuals: Any | None = None  # a Predictor of per-symbol residual ensembles
    weights: dict[str, float] = field(default_factory=dict)
    #: the planner asks every symbol with features, not only those with a model of their own
    scores_every_symbol = True

    def predict_batch(self, rows: Mapping[str, ArrayLike]) -> dict[str, float]:
        """``symbol -> prediction`` for every row (a one-row cross-section gets z-scores 0)."""
        if not rows:
            return {}
        syms = list(rows)
        n_feat = int(self.pooled.n_features_in_)
        X = np.vstack([check_X(rows[s], n_feat, what=f"features of {s}")[:1] for s in syms])
        pred = self.pooled.predict(cross_sectional_z(X, np.zeros(len(syms))))
        out = dict(zip(syms, pred.astype(float), strict=True))
        if self.residuals is not None:
            own = self.residuals.predict_batch({s: rows[s] for s in syms if s in self.weights})
            for s, r in own.items():
                out[s] += self.weights[s] * r
        return {s: float(v) for s, v in out.items()}


@dataclass
class PooledFit:
    """Outcome of :func:`train_pooled`: the predictor, or the reason there is none."""

    predictor: PooledPredictor | None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    residual_models: dict[str, Any] = field(default_factory=dict)


def train_pooled(
    data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    kind: str,
    horizon_days: int,
    min_samples: int,
    max_epochs: int,
    seed: int = 0,
    validate: bool = False,
) -> PooledFit:
    """Fit the ``pooled`` or ``hierarchical`` kind on ``symbol -> (X, y, dates)``.

    ``y`` is already the run's target. The pooled fit follows :func:`train_many` (purged
    validation, epochs and trees picked on the inner split, refit on every row); it needs
    ``min_samples`` samples from at least two symbols, else nothing is fitted and ``failed``
    says why in one line.
    """
    if kind not in ("pooled", "hierarchical"):
        raise ModelError(f"unknown pooled model kind {kind!r}")
    n_rows = sum(len(v[1]) for v in data.values())
    if len(data) < 2 or n_rows < min_samples:
        reason = (
            f"{kind} model: {n_rows} samples from {len(data)} symbol(s); it needs "
            f"ml_min_samples_per_symbol {min_samples} samples from at least 2 symbols"
        )
        return PooledFit(None, failed={POOLED: reason})
    syms = sorted(data)
    X = np.vstack([data[s][0] for s in syms])
    y = np.concatenate([data[s][1] for s in syms])
    d = np.concatenate([np.asarray(data[s][2], dtype="datetime64[D]") for s in syms])
    Xz = cross_sectional_z(X, d)
    nn = NNRegressor(max_epochs=max_epochs, batch_size=POOLED_BATCH, random_state=seed)
    res = train_many(
        {POOLED: (Xz, y, d)},
        nn=nn,
        xgb=XGBRegressorModel(random_state=seed),
        horizon_days=horizon_days,
        leakage_diagnostic=validate,
        seed=seed,
    )[POOLED]
    if not res.ok:
        return PooledFit(None, failed={POOLED: f"{kind} model: {res.error}"})
    fit = PooledFit(PooledPredictor(res.model), metrics={POOLED: res.metrics or {}})
    if kind == "pooled":
        return fit
    from sentinel.ml.predictor import Predictor  # lazy: compiles boosters

    base = res.model.predict(Xz)
    residual_sets, start = {}, 0
    for s in syms:
        n = len(data[s][1])
        if n >= min_samples:
            residual_sets[s] = (data[s][0], data[s][1] - base[start : start + n], data[s][2])
        start += n
    own = train_many(
        residual_sets,
        nn=NNRegressor(max_epochs=max_epochs, random_state=seed),
        horizon_days=horizon_days,
        leakage_diagnostic=validate,
        seed=seed,
    )
    residuals = Predictor()
    for s, r in own.items():
        if r.ok:
            residuals.add(s, r.model)
            n = len(data[s][1])
            fit.predictor.weights[s] = n / (n + min_samples)
            fit.residual_models[s] = r.model
            fit.metrics[s] = r.metrics or {}
        else:
            fit.failed[s] = f"residual model: {r.error}"
    if fit.residual_models:
        fit.predictor.residuals = residuals
    return fit
