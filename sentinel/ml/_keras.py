"""Keras construction and weight extraction for the notes' network (imports TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentinel.ml._tf import keras
from sentinel.ml._weights import BN_EPSILON, DenseBN, NNWeights


def build_network(
    n_features: int, hidden_units: Sequence[int], dropout: Sequence[float]
) -> keras.Model:
    """Dense(ReLU) -> BatchNorm -> Dropout per hidden layer, linear output."""
    inputs = keras.Input(shape=(n_features,), name="features")
    h = inputs
    for i, (units, rate) in enumerate(zip(hidden_units, dropout, strict=True)):
        h = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(h)
        h = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"bn_{i}")(h)
        h = keras.layers.Dropout(rate, name=f"dropout_{i}")(h)
    out = keras.layers.Dense(1, name="out")(h)
    return keras.Model(inputs, out, name="sentinel_nn")


def extract_weights(model: keras.Model) -> NNWeights:
    """Pull Dense/BatchNorm arrays out of a (trained or loaded) network, in layer order."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if len(dense) != len(norms) + 1:
        raise ValueError(f"unexpected network: {len(dense)} Dense and {len(norms)} BatchNorm")
    hidden = []
    for d, bn in zip(dense[:-1], norms, strict=True):
        k, b = (np.asarray(w, dtype=np.float32) for w in d.get_weights())
        g, be, mm, mv = (np.asarray(w, dtype=np.float32) for w in bn.get_weights())
        hidden.append(DenseBN(k, b, g, be, mm, mv))
    ok, ob = (np.asarray(w, dtype=np.float32) for w in dense[-1].get_weights())
    return NNWeights(tuple(hidden), ok, ob)


def network_from_weights(weights: NNWeights, dropout: Sequence[float]) -> keras.Model:
    """Standard Keras model carrying ``weights`` (for ``nn_model.keras``)."""
    units = [layer.kernel.shape[1] for layer in weights.hidden]
    model = build_network(weights.hidden[0].kernel.shape[0], units, dropout)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for d, bn, w in zip(dense[:-1], norms, weights.hidden, strict=True):
        d.set_weights([w.kernel, w.bias])
        bn.set_weights([w.gamma, w.beta, w.moving_mean, w.moving_var])
    dense[-1].set_weights([weights.out_kernel, weights.out_bias])
    return model
