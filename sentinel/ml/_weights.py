"""Fitted network weights as plain arrays: shared by the numpy path and the Keras bridge.

A leaf module (numpy only) so that :mod:`sentinel.ml.nn`, :mod:`sentinel.ml._keras` and
:mod:`sentinel.ml.batched` can all import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BN_EPSILON = 1e-3  # Keras BatchNormalization default; the numpy pass must use the same value


@dataclass(frozen=True)
class DenseBN:
    """One hidden layer: Dense + ReLU, then inference-mode BatchNorm (dropout is identity)."""

    kernel: np.ndarray
    bias: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    moving_mean: np.ndarray
    moving_var: np.ndarray


@dataclass(frozen=True)
class NNWeights:
    """Everything a fitted network needs for inference, as plain float32 arrays."""

    hidden: tuple[DenseBN, ...]
    out_kernel: np.ndarray
    out_bias: np.ndarray

    def folded(self, mean: np.ndarray, scale: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Fold the scaler and each BatchNorm into the next Dense: ``relu`` chain of matmuls.

        ``BN(h) = a*h + c`` with ``a = gamma/sqrt(var+eps)``, ``c = beta - a*mean`` is affine, so
        ``BN(h) @ W + b = h @ (a[:, None]*W) + (c @ W + b)``; the scaler folds the same way.
        Returns ``[(W, b), ...]``: ReLU after every layer but the last.
        """
        inv = 1.0 / scale.astype(np.float64)
        w = self.hidden[0].kernel.astype(np.float64)
        layers: list[tuple[np.ndarray, np.ndarray]] = []
        cur_w = inv[:, None] * w
        cur_b = self.hidden[0].bias.astype(np.float64) - (mean * inv) @ w
        nxt = [*(layer.kernel for layer in self.hidden[1:]), self.out_kernel]
        nxt_b = [*(layer.bias for layer in self.hidden[1:]), self.out_bias]
        for layer, w_next, b_next in zip(self.hidden, nxt, nxt_b, strict=True):
            layers.append((cur_w, cur_b))
            a = layer.gamma.astype(np.float64) / np.sqrt(
                layer.moving_var.astype(np.float64) + BN_EPSILON
            )
            c = layer.beta.astype(np.float64) - a * layer.moving_mean.astype(np.float64)
            w_next = w_next.astype(np.float64)
            cur_w = a[:, None] * w_next
            cur_b = c @ w_next + b_next.astype(np.float64)
        layers.append((cur_w, cur_b))
        return layers
