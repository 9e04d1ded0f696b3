"""The predictor's stacked arrays hold each model once: same predictions to the bit, less memory.

Issue 13 (peak memory of a 500-symbol walk-forward run): the stacked trees were padded to the
largest booster, ~82 MB for ~6 MB of real nodes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ml._trees import FlatTrees, TreeStack
from sentinel.ml.predictor import Predictor
from sentinel.ml.xgb import XGBRegressorModel


def padded_stack(flats: list[FlatTrees]) -> TreeStack:
    """The reference: every booster padded to the largest tree and node counts (the layout
    ``TreeStack.build`` had before it stored each booster's nodes once)."""
    n_trees = max(f.feature.shape[0] for f in flats)
    n_nodes = max(f.feature.shape[1] for f in flats)
    size = n_trees * n_nodes
    ids = np.tile(np.arange(n_nodes, dtype=np.int64), (n_trees, 1))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "t", "l", "r", "v")}
    for m, f in enumerate(flats):
        feat = np.zeros((n_trees, n_nodes), np.int64)
        thr, val = np.zeros(feat.shape, np.float32), np.zeros(feat.shape, np.float64)
        lft, rgt = ids.copy(), ids.copy()
        a, b = f.feature.shape
        feat[:a, :b], thr[:a, :b], val[:a, :b] = f.feature, f.threshold, f.value
        lft[:a, :b], rgt[:a, :b] = f.left, f.right
        offset = m * size + np.arange(n_trees, dtype=np.int64)[:, None] * n_nodes
        for key, arr in (("f", feat), ("t", thr), ("v", val), ("l", lft + offset),
                         ("r", rgt + offset)):  # fmt: skip
            parts[key].append(arr.ravel())
    roots = np.arange(len(flats))[:, None] * size + np.arange(n_trees)[None, :] * n_nodes
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    base = np.array([f.base_score for f in flats])
    depth = max(f.depth for f in flats)
    return TreeStack(cat["f"], cat["t"], cat["l"], cat["r"], cat["v"], roots, base, depth)


def _predictor(trained) -> Predictor:
    p = Predictor()
    for sym, r in trained.items():
        p.add(sym, r.model)
    return p


@pytest.fixture(scope="module")
def boosters():
    """Boosters of different tree counts and depths (as early stopping leaves them)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 5))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=120)
    shapes = [(1, 1), (37, 4), (3, 2), (12, 6), (5, 3)]
    return [
        XGBRegressorModel(n_estimators=n, max_depth=d, random_state=i).fit(X, y)
        for i, (n, d) in enumerate(shapes)
    ]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(1, 30),
    scale=st.sampled_from([1e-3, 1.0, 50.0]),
)
def test_unpadded_stack_predicts_like_the_padded_one_to_the_bit(boosters, seed, n_rows, scale):
    flats = [m.flat_trees() for m in boosters]
    padded, compact = padded_stack(flats), TreeStack.build(flats)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(flats), size=n_rows)
    X = rng.normal(scale=scale, size=(n_rows, 5))
    np.testing.assert_array_equal(compact.predict(idx, X), padded.predict(idx, X))


def test_each_booster_node_is_stored_once(boosters):
    flats = [m.flat_trees() for m in boosters]
    compact = TreeStack.build(flats)
    assert compact.feature.size == 1 + sum(f.feature.size for f in flats)
    assert compact.feature.size < padded_stack(flats).feature.size / 3
    assert compact.depth == max(f.depth for f in flats) == 6


def test_the_predictor_scores_with_the_unpadded_stack(trained_many):
    p = _predictor(trained_many)
    rows = {sym: np.full(20, 0.1 * i) for i, sym in enumerate(trained_many)}
    out = p.predict_batch(rows)
    trees = p._stacked().trees
    flats = [r.model.xgb_.flat_trees() for _, r in sorted(trained_many.items())]
    assert trees.feature.size == 1 + sum(f.feature.size for f in flats)
    for sym, r in trained_many.items():
        assert out[sym] == pytest.approx(float(r.model.predict(rows[sym][None])[0]), abs=1e-6)


@pytest.fixture
def predictor(trained_many):
    return _predictor(trained_many)


def test_each_network_is_held_once_after_stacking(predictor, trained_many):
    x = np.linspace(-1.0, 1.0, 20)
    first = {}  # each symbol scored before any stack exists: with its own folded layers
    for sym in trained_many:
        first[sym] = _predictor(trained_many).predict_one(sym, x)
    stack = predictor._stacked()
    for comp in predictor._models.values():
        for (w, b), W, B in zip(comp.layers, stack.W, stack.b, strict=True):
            assert np.shares_memory(w, W) and np.shares_memory(b, B)
    assert {s: predictor.predict_one(s, x) for s in trained_many} == first  # views: same bits
    predictor.remove("S0")  # a rebuild stacks the views: the same values
    assert {s: predictor.predict_one(s, x) for s in trained_many if s != "S0"} == {
        s: v for s, v in first.items() if s != "S0"
    }


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_day_of_every_symbol_scores_like_any_subset_to_the_bit(trained_many, seed):
    predictor = _predictor(trained_many)
    rng = np.random.default_rng(seed)
    rows = {s: rng.normal(size=20) for s in sorted(trained_many)}
    every = predictor.predict_batch(rows)  # every symbol in stack order: no gathered copy
    backwards = predictor.predict_batch(dict(reversed(rows.items())))  # a gathered copy
    some = predictor.predict_batch({s: rows[s] for s in list(rows)[1:]})
    assert every == backwards
    assert some == {s: v for s, v in every.items() if s in some} and len(some) == len(rows) - 1
