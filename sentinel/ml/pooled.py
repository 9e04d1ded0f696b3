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
from sentinel.ml.model_files import POOLED
from sentinel.ml.nn import NNRegressor
from sentinel.ml.xgb import XGBRegressorModel

__all__ = ["MODEL_KINDS", "POOLED", "TARGETS", "PooledPredictor", "train_pooled"]

MODEL_KINDS = ("per_symbol", "pooled", "hierarchical")
TARGETS = ("return", "excess", "rank")
#: Mini-batch of the pooled network: ~100k rows at 32 a step would cost minutes per retrain
#: (bench ml_pooled measures one retrain over 366 symbols x 250 samples).
POOLED_BATCH = 2048
#: Adam step of the pooled network. The per-symbol 1e-3 suits batches of 32; at 2048 rows a
#: batch an epoch has 64x fewer steps, and with 1e-3 the bench's pooled network was still
#: improving at its 60-epoch cap (so the inner fit and the refit both ran all 60). 5e-3 (the
#: batch ratio's square root is 8) early-stopped at epoch 29 (patience 10) with the same
#: validation IC (0.440 against 0.438 on the bench's planted signal).
POOLED_LR = 5e-3
#: Early-stopping patience of the pooled network, in epochs. A pooled epoch holds every symbol's
#: rows (~60x a per-symbol one), so 5 epochs without improvement are still more steps than the
#: per-symbol 10; on the bench it stopped at epoch 19 instead of 29, validation IC unchanged.
POOLED_PATIENCE = 5


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
    kind: str = "pooled"
    target: str = "return"
    #: the fitted residual ensembles behind ``residuals`` (what the model store saves)
    residual_models: dict[str, Any] = field(default_factory=dict)
    #: the planner asks every symbol with features, not only those with a model of their own
    scores_every_symbol = True

    @classmethod
    def build(
        cls,
        pooled: Any,
        residual_models: Mapping[str, Any],
        weights: Mapping[str, float],
        kind: str,
        target: str,
    ) -> PooledPredictor:
        """A predictor from fitted ensembles (training, or loading from the model store)."""
        if kind not in ("pooled", "hierarchical") or target not in TARGETS:
            raise ModelError(f"not a pooled model: kind {kind!r}, target {target!r}")
        missing = sorted(set(residual_models) - set(weights))
        if missing:
            raise ModelError(f"residual models without a weight: {missing}")
        residuals = None
        if residual_models:
            from sentinel.ml.predictor import Predictor  # lazy: compiles boosters

            residuals = Predictor()
            for s, m in residual_models.items():
                residuals.add(s, m)
        return cls(pooled, residuals, {s: float(weights[s]) for s in residual_models}, kind,
                   target, dict(residual_models))  # fmt: skip

    @property
    def symbols(self) -> list[str]:
        """Symbols with a residual model of their own (every symbol is scored, see above)."""
        return sorted(self.residual_models)

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
    target: str = "return",
) -> PooledFit:
    """Fit the ``pooled`` or ``hierarchical`` kind on ``symbol -> (X, y, dates)``.

    ``y`` is already the run's target (``target`` names it, for the stored model). The pooled
    fit follows :func:`train_many` (purged validation, epochs and trees picked on the inner
    split, refit on every row); it needs ``min_samples`` samples from at least two symbols,
    else nothing is fitted and ``failed`` says why in one line.
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
    nn = NNRegressor(max_epochs=max_epochs, batch_size=POOLED_BATCH, learning_rate=POOLED_LR,
                     patience=POOLED_PATIENCE, random_state=seed)  # fmt: skip
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
    fit = PooledFit(PooledPredictor.build(res.model, {}, {}, kind, target),
                    metrics={POOLED: res.metrics or {}})  # fmt: skip
    if kind == "pooled":
        return fit
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
    weights = {}
    for s, r in own.items():
        if r.ok:
            n = len(data[s][1])
            weights[s] = n / (n + min_samples)
            fit.residual_models[s] = r.model
            fit.metrics[s] = r.metrics or {}
        else:
            fit.failed[s] = f"residual model: {r.error}"
    fit.predictor = PooledPredictor.build(res.model, fit.residual_models, weights, kind, target)
    return fit
