"""XGBoost per-symbol regressor with the notes' hyperparameters and the shared model contract."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml._base import BaseModel
from sentinel.ml._checks import MIN_SAMPLES, check_X, check_Xy
from sentinel.ml._scaler import ScaledInputs, fit_scaler, standardise
from sentinel.ml._trees import FlatTrees, flatten_booster
from sentinel.ml.errors import NotFittedError


def _boost(xgb: Any, params: dict[str, Any], dtrain: Any, rounds: int) -> Any:
    """``xgb.train(params, dtrain, rounds)`` without its callback machinery: the same booster
    bit for bit (tested), 4-10 % less time on the few-hundred-row fits a walk-forward run
    makes thousands of (250-800 rows, 60-150 trees, 2026-12-01).

    ``xgb.train`` ends with ``Booster.reset()``, which frees the training caches by saving the
    model and loading it back (~2-5 ms); the slice ``booster[:rounds]`` copies the trees alone
    into a new booster, which frees them as well (the fitted booster is dropped) in ~1 ms.
    """
    booster = xgb.Booster(params, [dtrain])
    if rounds > 0:
        booster.update(dtrain, 0)  # the public call once: it checks and records the features
        step = _update_call(xgb)
        for i in range(1, rounds):
            step(booster, dtrain, i)
    return booster[:rounds] if rounds > 0 else booster.reset()


def _update_call(xgb: Any) -> Callable[[Any, Any, int], None]:
    """One boosting round: XGBoost's C call itself, as ``Booster.update`` makes it.

    ``Booster.update`` re-checks and re-assigns the DMatrix's feature names before every round
    (~20-25 us a round, from the fits' difference); they cannot change between the rounds of
    one fit, and the first round went through it. Same booster bytes (tested against
    ``xgb.train``); 4-12 % less per fit of 600-1,000 rows and 100-150 trees, nothing measurable
    at 250 rows and 60 trees (2026-12-01). Falls back to ``Booster.update`` if this XGBoost
    lacks the private names.
    """
    core = getattr(xgb, "core", None)
    check = getattr(core, "_check_call", None)
    call = getattr(getattr(core, "_LIB", None), "XGBoosterUpdateOneIter", None)
    if check is None or call is None:
        return lambda booster, dtrain, i: booster.update(dtrain, i)

    def step(booster: Any, dtrain: Any, i: int) -> None:
        check(call(booster.handle, ctypes.c_int(i), dtrain.handle))

    return step


class XGBRegressorModel(ScaledInputs, BaseModel):
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
        max_bin: int = 64,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.min_samples = min_samples
        # histogram bins per feature: a symbol has a few hundred rows, so XGBoost's default 256
        # bins mostly hold one row each and cost ~3x the fit time for no split it could not make
        self.max_bin = max_bin

    def _booster_params(self) -> dict[str, Any]:
        return {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_bin": int(self.max_bin),
            "max_depth": int(self.max_depth),
            "eta": float(self.learning_rate),
            "subsample": float(self.subsample),
            "colsample_bytree": float(self.colsample_bytree),
            "seed": int(self.random_state),
            "nthread": int(self.n_jobs),
            "verbosity": 0,
        }

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        eval_set: tuple[ArrayLike, ArrayLike] | None = None,
        early_stopping_rounds: int = 20,
    ) -> XGBRegressorModel:
        """Fit the booster on standardised ``X`` (scaler fitted on these rows only).

        With ``eval_set`` (a later, purged slice), boosting stops once its error has not improved
        for ``early_stopping_rounds`` trees and the booster keeps the best number of trees
        (``best_n_trees_``): how walk-forward training picks the tree count before refitting
        on every known row with exactly that many trees.
        """
        import xgboost as xgb  # lazy: keeps `import sentinel.ml.models` light

        Xa, ya = check_Xy(X, y, min_samples=self.min_samples)
        scaler = fit_scaler(Xa)
        # nthread: a DMatrix of a few hundred rows built by XGBoost's default thread team cost
        # 46-62 ms at load ~5 (OpenMP start-up and spinning) against 0.9 ms on one thread
        nt = max(1, int(self.n_jobs))
        dtrain = xgb.DMatrix(standardise(scaler, Xa), label=ya, nthread=nt)
        rounds = int(self.n_estimators)
        if eval_set is None:
            booster = _boost(xgb, self._booster_params(), dtrain, rounds)
            return self._set_state(booster, scaler, n_samples=len(ya))
        Xe = check_X(eval_set[0], Xa.shape[1], what="eval_set X")
        deval = xgb.DMatrix(
            standardise(scaler, Xe), label=np.asarray(eval_set[1], np.float64), nthread=nt
        )
        booster = xgb.train(
            self._booster_params(), dtrain, num_boost_round=rounds, evals=[(deval, "es")],
            early_stopping_rounds=int(early_stopping_rounds), verbose_eval=False,
        )  # fmt: skip
        best = int(booster.best_iteration) + 1
        return self._set_state(booster[:best], scaler, n_samples=len(ya))

    def _set_state(self, booster: Any, scaler: Any, *, n_samples: int) -> XGBRegressorModel:
        self.booster_ = booster
        self.__dict__.pop("_flat", None)  # parsed from the previous booster, if any
        self.scaler_ = scaler  # sklearn StandardScaler fitted on the training rows
        self.n_features_in_ = int(scaler.mean_.shape[0])
        self.n_samples_ = int(n_samples)
        self.best_n_trees_ = int(booster.num_boosted_rounds())
        return self

    def flat_trees(self) -> FlatTrees:
        """The booster's trees as arrays for batched prediction, parsed once and kept (the
        parse costs 1-4 ms a booster: walk-forward training does it in its worker thread)."""
        if not hasattr(self, "booster_"):
            raise NotFittedError(self)
        flat = self.__dict__.get("_flat")
        if flat is None:
            flat = self._flat = flatten_booster(self.booster_)
        return flat

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted horizon return per row."""
        if not hasattr(self, "booster_"):
            raise NotFittedError(self)
        Xa = check_X(X, self.n_features_in_)
        Xs = standardise(self.scaler_, Xa)
        return np.asarray(self.booster_.inplace_predict(Xs), dtype=np.float64).reshape(-1)
