"""The raw boosting-round call of fixed-count fits, and its fallback."""

from __future__ import annotations

import types

import numpy as np
import xgboost as xgb

from sentinel.ml.xgb import XGBRegressorModel, _boost, _update_call


def _data(n: int = 120) -> xgb.DMatrix:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, 6))
    return xgb.DMatrix(X, label=0.02 * X[:, 0] + 0.01 * rng.normal(size=n), nthread=1)


def test_without_xgboosts_private_names_the_rounds_go_through_booster_update() -> None:
    calls: list[int] = []

    class Booster:
        def update(self, dtrain: object, i: int) -> None:
            calls.append(i)

    step = _update_call(types.SimpleNamespace(core=types.SimpleNamespace()))
    step(Booster(), object(), 4)
    assert calls == [4]


def test_the_raw_and_the_public_rounds_give_the_same_booster() -> None:
    params = XGBRegressorModel(random_state=1)._booster_params()
    fallback = types.SimpleNamespace(Booster=xgb.Booster, core=types.SimpleNamespace())
    raw = _boost(xgb, params, _data(), 25)
    public = _boost(fallback, params, _data(), 25)
    assert raw.num_boosted_rounds() == public.num_boosted_rounds() == 25
    assert bytes(raw.save_raw("ubj")) == bytes(public.save_raw("ubj"))
