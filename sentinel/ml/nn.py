"""The notes' per-symbol network (20 -> 64 -> 32 -> 16 -> 1) with a numpy inference path.

Keras is used to *train* (single model) and to *store* (``nn_model.keras``); scoring uses the
extracted weights in numpy because ``model.predict`` costs ~37 ms per row against ~0.02 ms here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sentinel.ml._base import BaseModel
from sentinel.ml._checks import MIN_SAMPLES, check_X, check_Xy
from sentinel.ml._scaler import ScaledInputs, fit_scaler, standardise
from sentinel.ml._weights import BN_EPSILON, NNWeights
from sentinel.ml.errors import ModelError, NotFittedError


def forward(weights: NNWeights, X_scaled: np.ndarray) -> np.ndarray:
    """Inference-mode forward pass in numpy, layer by layer exactly as Keras computes it."""
    h = np.asarray(X_scaled, dtype=np.float32)
    for layer in weights.hidden:
        h = np.maximum(h @ layer.kernel + layer.bias, 0.0)
        h = (h - layer.moving_mean) / np.sqrt(layer.moving_var + BN_EPSILON) * layer.gamma
        h = h + layer.beta
    return (h @ weights.out_kernel + weights.out_bias)[:, 0]


def target_scaler(y: np.ndarray, enabled: bool) -> tuple[float, float]:
    """Label mean and spread used for training (identity when disabled)."""
    if not enabled:
        return 0.0, 1.0
    std = float(y.std())
    return float(y.mean()), std if std > 0 else 1.0


def fold_target(weights: NNWeights, y_mean: float, y_std: float) -> NNWeights:
    """Make the output layer predict ``y_mean + y_std * out``: returns in original units."""
    if y_mean == 0.0 and y_std == 1.0:
        return weights
    return NNWeights(
        weights.hidden,
        (weights.out_kernel.astype(np.float64) * y_std).astype(np.float32),
        (weights.out_bias.astype(np.float64) * y_std + y_mean).astype(np.float32),
    )


def split_counts(n: int, validation_fraction: float) -> tuple[int, int]:
    """Rows for training and for the early-stopping slice (the chronologically last rows)."""
    n_val = max(1, int(math.ceil(n * validation_fraction)))
    if n - n_val < 2:
        raise ModelError(f"too few samples ({n}) to keep an early-stopping slice")
    return n - n_val, n_val


class NNRegressor(ScaledInputs, BaseModel):
    """Per-symbol feed-forward regressor of the design notes, sklearn-style.

    Parameters
    ----------
    hidden_units, dropout
        Layer widths and dropout rates (notes: 64/32/16 and 0.3/0.2/0.1).
    learning_rate, batch_size, max_epochs, patience
        Adam step, mini-batch, epoch cap, early-stopping patience (epochs without improvement).
    validation_fraction
        Chronologically last share of the fit rows used for early stopping; rows must be in
        time order, so the slice is the most recent data, never a random sample.
    random_state
        Seed for initialisation, shuffling and dropout: same data + seed -> same network.
    scale_target
        Train on standardised labels and fold ``y = mean + std * out`` back into the output
        layer afterwards. Raw 14-day returns (~0.05) are tiny against a fresh network's output
        (~1), so without it early stopping fires while the net still learns the label scale.
        The folded network predicts returns directly: the stored model format is unchanged.
    min_samples
        Fewer rows than this raise :class:`ModelError` rather than fit noise.
    """

    kind = "nn"

    def __init__(
        self,
        hidden_units: tuple[int, ...] = (64, 32, 16),
        dropout: tuple[float, ...] = (0.3, 0.2, 0.1),
        learning_rate: float = 1e-3,
        batch_size: int = 32,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.15,
        random_state: int = 0,
        min_samples: int = MIN_SAMPLES,
        scale_target: bool = True,
    ) -> None:
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.min_samples = min_samples
        self.scale_target = scale_target

    def _check_params(self) -> None:
        if len(self.hidden_units) != len(self.dropout) or not self.hidden_units:
            raise ModelError("hidden_units and dropout must be non-empty and of equal length")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ModelError(f"validation_fraction must be in (0, 1): {self.validation_fraction}")
        if self.max_epochs < 1 or self.batch_size < 1:
            raise ModelError("max_epochs and batch_size must be >= 1")

    def fit(self, X: ArrayLike, y: ArrayLike) -> NNRegressor:
        """Fit one Keras network (reference path; use :mod:`sentinel.ml.batched` for many)."""
        self._check_params()
        Xa, ya = check_Xy(X, y, min_samples=self.min_samples)
        n_tr, _ = split_counts(len(ya), self.validation_fraction)
        scaler = fit_scaler(Xa)
        Xs = scaler.transform(Xa).astype(np.float32)
        y_mean, y_std = target_scaler(ya, self.scale_target)
        yf = ((ya - y_mean) / y_std).astype(np.float32)

        # lazy: TensorFlow costs seconds to import; only fitting and the store need it
        from sentinel.ml._keras import build_network, extract_weights
        from sentinel.ml._tf import keras

        keras.utils.set_random_seed(int(self.random_state))
        model = build_network(Xa.shape[1], self.hidden_units, self.dropout)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.patience, restore_best_weights=True
        )
        hist = model.fit(
            Xs[:n_tr],
            yf[:n_tr],
            validation_data=(Xs[n_tr:], yf[n_tr:]),
            epochs=self.max_epochs,
            batch_size=self.batch_size,
            shuffle=True,
            callbacks=[stop],
            verbose=0,
        )
        val_losses = [float(v) for v in hist.history["val_loss"]]
        best = int(np.argmin(val_losses))
        return self._set_state(
            fold_target(extract_weights(model), y_mean, y_std),
            scaler,
            n_samples=len(ya),
            best_epoch=best + 1,
            n_epochs=len(val_losses),
            best_val_loss=val_losses[best] * y_std**2,
        )

    def _set_state(
        self,
        weights: NNWeights,
        scaler: Any,
        *,
        n_samples: int,
        best_epoch: int,
        n_epochs: int,
        best_val_loss: float,
    ) -> NNRegressor:
        """Install fitted state (shared by Keras fit, the batched trainer and the store)."""
        self.weights_ = weights
        self.scaler_ = scaler  # sklearn StandardScaler fitted on the training rows
        self.n_features_in_ = int(scaler.mean_.shape[0])
        self.n_samples_ = int(n_samples)
        self.best_epoch_ = int(best_epoch)
        self.n_epochs_ = int(n_epochs)
        self.best_val_loss_ = float(best_val_loss)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise NotFittedError(self)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted horizon return per row (numpy forward pass, inference-mode BatchNorm)."""
        self._check_fitted()
        Xa = check_X(X, self.n_features_in_)
        return forward(self.weights_, standardise(self.scaler_, Xa)).astype(np.float64)

    def to_keras(self) -> Any:
        """A standard Keras model holding the fitted weights (what the store saves)."""
        self._check_fitted()
        from sentinel.ml._keras import network_from_weights  # lazy: imports TensorFlow

        return network_from_weights(self.weights_, self.dropout)

    @classmethod
    def from_keras(
        cls, model: Any, scaler: Any, params: dict[str, Any], **info: Any
    ) -> NNRegressor:
        """Rebuild a fitted regressor from a loaded Keras model and its fitted scaler."""
        from sentinel.ml._keras import extract_weights  # lazy: imports TensorFlow

        p = dict(params)
        p["hidden_units"] = tuple(p.get("hidden_units", (64, 32, 16)))
        p["dropout"] = tuple(p.get("dropout", (0.3, 0.2, 0.1)))
        reg = cls(**p)
        return reg._set_state(
            extract_weights(model),
            scaler,
            n_samples=info.get("n_samples", 0),
            best_epoch=info.get("best_epoch", 0),
            n_epochs=info.get("n_epochs", 0),
            best_val_loss=info.get("best_val_loss", float("nan")),
        )
