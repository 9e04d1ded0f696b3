"""Flattened boosters route rows exactly as XGBoost does, whatever the tree depth."""

from __future__ import annotations

import numpy as np
import pytest

from sentinel.ml._trees import TreeStack, flatten_booster
from sentinel.ml.xgb import XGBRegressorModel


@pytest.mark.parametrize("depth", [1, 2, 4, 6])
def test_flat_trees_predict_like_xgboost(depth: int) -> None:
    rng = np.random.default_rng(depth)
    X = rng.normal(size=(200, 6))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=200)
    models = [
        XGBRegressorModel(n_estimators=n, max_depth=depth, random_state=0).fit(X, y)
        for n in (1, 37)
    ]
    flats = [m.flat_trees() for m in models]
    assert max(f.depth for f in flats) == depth  # deep enough data: every level is used
    stack = TreeStack.build(flats)
    Xt = rng.normal(size=(50, 6))
    for i, m in enumerate(models):
        xs = (Xt - m.scaler_mean_) / m.scaler_scale_
        got = stack.predict(np.full(len(Xt), i), xs)
        np.testing.assert_allclose(got, m.predict(Xt), rtol=0, atol=1e-6)


def test_flat_trees_are_parsed_once_per_booster() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 3)), rng.normal(size=80)
    m = XGBRegressorModel(n_estimators=5).fit(X, y)
    first = m.flat_trees()
    assert m.flat_trees() is first
    ref = flatten_booster(m.booster_)
    for name in ("feature", "threshold", "left", "right", "value"):
        np.testing.assert_array_equal(getattr(first, name), getattr(ref, name))
    m.fit(X[:60], y[:60])  # a new booster: parsed again
    assert m.flat_trees() is not first
