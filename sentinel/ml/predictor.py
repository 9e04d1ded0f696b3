"""In-memory scoring of per-symbol ensembles: one symbol in microseconds, a whole day in one go.

Models are compiled once into plain arrays: the network with its scaler and BatchNorm folded into
four matmuls (stacked ``[S, in, out]`` for the batch path, one einsum per layer), the booster as
flat tree arrays routed for all symbols together (see :mod:`sentinel.ml._trees`). No TensorFlow
call happens at prediction time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml._checks import check_X
from sentinel.ml._trees import FlatTrees, TreeStack, flatten_booster
from sentinel.ml.errors import MLError, ModelLoadError


@dataclass(frozen=True)
class _Compiled:
    layers: list[tuple[np.ndarray, np.ndarray]]  # folded NN: relu between, linear last
    xgb_mean: np.ndarray
    xgb_scale: np.ndarray
    trees: FlatTrees
    nn_weight: float
    n_features: int


def _compile(model: Any) -> _Compiled:
    nn, xgb = model.nn_, model.xgb_
    return _Compiled(
        nn.weights_.folded(nn.scaler_mean_, nn.scaler_scale_),
        xgb.scaler_mean_,
        xgb.scaler_scale_,
        xgb.flat_trees() if hasattr(xgb, "flat_trees") else flatten_booster(xgb.booster_),
        float(model.nn_weight),
        int(model.n_features_in_),
    )


class _Stacked:
    """All cached symbols' arrays stacked along a leading symbol axis."""

    def __init__(self, symbols: list[str], comps: list[_Compiled]) -> None:
        self.index = {s: i for i, s in enumerate(symbols)}
        self.W = [np.stack([c.layers[k][0] for c in comps]) for k in range(len(comps[0].layers))]
        self.b = [np.stack([c.layers[k][1] for c in comps]) for k in range(len(comps[0].layers))]
        self.xgb_mean = np.stack([c.xgb_mean for c in comps])
        self.xgb_scale = np.stack([c.xgb_scale for c in comps])
        self.nn_weight = np.array([c.nn_weight for c in comps])
        self.trees = TreeStack.build([c.trees for c in comps])


class Predictor:
    """Cache of fitted ensembles keyed by symbol, scoring rows of raw (unscaled) features.

    Parameters
    ----------
    store
        Optional :class:`~sentinel.ml.model_files.ModelStore`; symbols not in memory are loaded
        from it on first use. Symbols without a usable model are skipped by
        :meth:`predict_batch` (the caller falls back to the wavelet score) and reported in
        ``load_errors``.
    """

    def __init__(self, store: Any = None) -> None:
        self.store = store
        self._models: dict[str, _Compiled] = {}
        self._stack: _Stacked | None = None
        self.load_errors: dict[str, str] = {}

    # -- cache ------------------------------------------------------------------------------
    def add(self, symbol: str, model: Any) -> None:
        """Cache a fitted :class:`EnsembleModel` (e.g. straight from walk-forward training)."""
        comp = _compile(model)
        if self._models and comp.n_features != next(iter(self._models.values())).n_features:
            raise MLError(f"{symbol}: {comp.n_features} features, other models differ")
        self._models[symbol] = comp
        self.load_errors.pop(symbol, None)
        self._stack = None

    def remove(self, symbol: str) -> None:
        """Forget a symbol (after a retrain, call :meth:`load` again to pick up the new one)."""
        if self._models.pop(symbol, None) is not None:
            self._stack = None

    def load(self, symbols: Iterable[str] | None = None) -> dict[str, str]:
        """(Re)load symbols from the store (all stored ones by default); returns errors."""
        if self.store is None:
            raise MLError("Predictor has no store to load from")
        errors = {}
        for sym in list(symbols) if symbols is not None else self.store.symbols():
            try:
                self.add(sym, self.store.load(sym).model)
            except (ModelLoadError, MLError) as exc:
                self.remove(sym)
                errors[sym] = self.load_errors[sym] = str(exc)
        return errors

    @property
    def symbols(self) -> list[str]:
        """Symbols currently cached."""
        return sorted(self._models)

    def _ensure(self, symbols: Iterable[str]) -> None:
        if self.store is None:
            return
        todo = [s for s in symbols if s not in self._models and s not in self.load_errors]
        if todo:
            self.load(todo)

    def _stacked(self) -> _Stacked:
        if self._stack is None:
            names = sorted(self._models)
            stack = self._stack = _Stacked(names, [self._models[s] for s in names])
            # each symbol's layers become views of the stack: the network is held once, not
            # twice (~16 MB at 500 symbols); the same values (a rebuild stacks the views)
            for i, s in enumerate(names):
                layers = [(w[i], b[i]) for w, b in zip(stack.W, stack.b, strict=True)]
                self._models[s] = replace(self._models[s], layers=layers)
        return self._stack

    # -- scoring ----------------------------------------------------------------------------
    def predict_one(self, symbol: str, x: ArrayLike) -> float:
        """Ensemble predicted return for one feature row of ``symbol``.

        Raises
        ------
        MLError
            If the symbol has no usable model (the caller decides on the wavelet fallback).
        """
        self._ensure([symbol])
        comp = self._models.get(symbol)
        if comp is None:
            reason = self.load_errors.get(symbol, "not trained or not loaded")
            raise MLError(f"no ML model for {symbol}: {reason}")
        row = check_X(x, comp.n_features, what=f"features of {symbol}")[:1]
        h = row
        for k, (w, b) in enumerate(comp.layers):
            h = h @ w + b
            if k < len(comp.layers) - 1:
                h = np.maximum(h, 0.0)
        p_nn = float(h[0, 0])
        stack = self._stacked()
        xs = (row - comp.xgb_mean) / comp.xgb_scale
        p_xgb = float(stack.trees.predict(np.array([stack.index[symbol]]), xs)[0])
        return comp.nn_weight * p_nn + (1.0 - comp.nn_weight) * p_xgb

    def predict_batch(
        self, rows: Mapping[str, ArrayLike], *, components: bool = False
    ) -> dict[str, Any]:
        """Score one row per symbol for a whole day in one pass.

        Returns ``symbol -> predicted return`` (or ``{"nn", "xgb", "ensemble"}`` dicts with
        ``components=True``) for the symbols that have a model; others are left out. A row
        with NaN/inf raises :class:`ModelError` naming the symbol.
        """
        self._ensure(rows)
        syms = [s for s in rows if s in self._models]
        if not syms:
            return {}
        stack = self._stacked()
        n_feat = next(iter(self._models.values())).n_features
        X = np.vstack([check_X(rows[s], n_feat, what=f"features of {s}")[:1] for s in syms])
        idx = np.array([stack.index[s] for s in syms])
        # every cached symbol in stack order (the usual day): the stacked layers themselves, not
        # a gathered copy of them (~16 MB at 500 symbols, at every rebalance)
        every = len(idx) == len(stack.index) and bool((idx == np.arange(len(idx))).all())
        h = X
        for k, (w, b) in enumerate(zip(stack.W, stack.b, strict=True)):
            h = np.einsum("si,sio->so", h, w if every else w[idx]) + (b if every else b[idx])
            if k < len(stack.W) - 1:
                h = np.maximum(h, 0.0)
        p_nn = h[:, 0]
        p_xgb = stack.trees.predict(idx, (X - stack.xgb_mean[idx]) / stack.xgb_scale[idx])
        w_nn = stack.nn_weight[idx]
        ens = w_nn * p_nn + (1.0 - w_nn) * p_xgb
        if components:
            return {
                s: {"nn": float(a), "xgb": float(b), "ensemble": float(c)}
                for s, a, b, c in zip(syms, p_nn, p_xgb, ens, strict=True)
            }
        return {s: float(v) for s, v in zip(syms, ens, strict=True)}
