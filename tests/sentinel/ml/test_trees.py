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


def _boosters() -> list[object]:
    """Boosters of several sizes, depths and row counts (one-leaf trees included)."""
    import xgboost as xgb

    rng = np.random.default_rng(3)
    out = []
    for n, depth, rounds in ((12, 1, 1), (60, 4, 40), (400, 6, 150), (50, 4, 20)):
        X = rng.normal(size=(n, 20))
        y = np.zeros(n) if n == 50 else X[:, 0] * 0.1 + 0.05 * rng.normal(size=n)  # 50: stumps
        params = {**XGBRegressorModel(max_depth=depth)._booster_params(), "base_score": 0.37}
        out.append(xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=rounds))
    return out


def test_the_binary_model_reader_gives_the_json_models_node_lists_bit_for_bit() -> None:
    from sentinel.ml._trees import _tree_fields_json, _tree_fields_ubj

    for booster in _boosters():
        fast, ref = _tree_fields_ubj(booster), _tree_fields_json(booster)
        assert fast is not None
        assert fast[:2] == ref[:2]  # objective, base_score text
        for name, parts in ref[2].items():
            dtype = np.float32 if name == "split_conditions" else np.int32
            assert len(fast[2][name]) == len(parts)
            for got, want in zip(fast[2][name], parts, strict=True):
                np.testing.assert_array_equal(got, np.asarray(want, dtype), strict=False)
                assert np.asarray(got, dtype).tobytes() == np.asarray(want, dtype).tobytes()


def test_an_unrecognised_binary_layout_falls_back_to_the_json_model(monkeypatch) -> None:
    import sentinel.ml._trees as trees

    booster = _boosters()[1]
    fast = flatten_booster(booster)

    class Renamed:  # another layout: the reader finds none of its keys and must say so
        def save_raw(self, fmt: str) -> bytes:
            raw = bytes(booster.save_raw(fmt))
            return raw.replace(b"left_children", b"left_childrem") if fmt == "ubj" else raw

    assert trees._tree_fields_ubj(Renamed()) is None
    slow = flatten_booster(Renamed())
    for name in ("feature", "threshold", "left", "right", "value"):
        np.testing.assert_array_equal(getattr(slow, name), getattr(fast, name))
    assert (slow.base_score, slow.depth) == (fast.base_score, fast.depth) == (0.37, 4)


def test_fixed_count_fits_equal_xgboost_train_bit_for_bit() -> None:
    import xgboost as xgb

    from sentinel.ml._scaler import standardise

    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 20))
    y = X[:, 0] * 0.1 + 0.05 * rng.normal(size=300)
    for rounds in (1, 37):
        m = XGBRegressorModel(n_estimators=rounds, random_state=4).fit(X, y)
        xs = standardise(m.scaler_, X)
        ref = xgb.train(m._booster_params(), xgb.DMatrix(xs, label=y), num_boost_round=rounds)
        assert bytes(m.booster_.save_raw("json")) == bytes(ref.save_raw("json"))
        assert m.best_n_trees_ == ref.num_boosted_rounds() == m.booster_.num_boosted_rounds()
        np.testing.assert_array_equal(m.predict(X), ref.inplace_predict(xs))
