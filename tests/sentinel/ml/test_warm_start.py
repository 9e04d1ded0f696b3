"""``ml.warm_start``: refits between two picks resume the previous retrain's networks."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from sentinel.ml._graph import _Trainer
from sentinel.ml._weights import DenseBN, NNWeights
from sentinel.ml.batched import _stack, train_many, warm_start
from sentinel.ml.models import NNRegressor
from sentinel.ml.nn import fold_target, forward
from sentinel.ml.policy import MLPolicy
from sentinel.settings import Settings
from tests.sentinel.ml.conftest import make_data

NN = NNRegressor(max_epochs=6, patience=2, hidden_units=(8, 4), dropout=(0.1, 0.0))


def _older_and_newer(seed: int = 0) -> tuple[Any, Any]:
    """One symbol's samples known at a retrain and a month later (more rows, shifted moments)."""
    X, y, d = make_data(140, seed=seed)
    return (X[:100], y[:100], d[:100]), (X * 1.3 + 0.2, y * 1.1 + 0.001, d)


def _net_from_start(start: Any, st: Any, row: int) -> NNWeights:
    """The network a Start row holds, in return units of the stack's target scaler."""
    sizes = [st.x_tr.shape[2], *NN.hidden_units]
    shapes: list[tuple[int, ...]] = []
    for fi, fo in zip(sizes[:-1], sizes[1:], strict=True):
        shapes += [(fi, fo), (fo,), (fo,), (fo,)]
    shapes += [(sizes[-1], 1), (1,)]
    mov_shapes = [(fo,) for fo in sizes[1:] for _ in (0, 1)]
    p = [a[0] for a in _Trainer._split(start.flat[row : row + 1], shapes)]
    m = [a[0] for a in _Trainer._split(start.moving[row : row + 1], mov_shapes)]
    hidden = tuple(
        DenseBN(p[4 * k], p[4 * k + 1], p[4 * k + 2], p[4 * k + 3], m[2 * k], m[2 * k + 1])
        for k in range(len(NN.hidden_units))
    )
    return fold_target(NNWeights(hidden, p[-2], p[-1]), *st.y_scalers[int(start.rows[row])])


def test_the_start_computes_the_previous_network_in_the_new_stacks_units():
    old, new = _older_and_newer()
    prev = train_many({"AAA": old}, nn=NN, leakage_diagnostic=False, metrics=False)["AAA"]
    net = prev.model.nn_
    X, y = new[0], new[1]
    st = _stack([(X, y)], NN.validation_fraction, NN.scale_target, [0], True)
    start = warm_start(st, [net], NN)
    assert start is not None and list(start.rows) == [0]
    # the new scalers differ from the old ones, yet the rewritten weights predict what the
    # previous network predicts, on the raw rows
    assert not np.allclose(st.scalers[0].mean_, net.scaler_.mean_)
    resumed = forward(
        _net_from_start(start, st, 0), (X - st.scalers[0].mean_) / st.scalers[0].scale_
    )
    np.testing.assert_allclose(resumed, net.predict(X), rtol=1e-4, atol=1e-6)


def test_a_network_of_another_architecture_starts_fresh():
    old, new = _older_and_newer()
    other = NNRegressor(max_epochs=3, hidden_units=(6, 4), dropout=(0.0, 0.0))
    prev = train_many({"AAA": old}, nn=other, leakage_diagnostic=False, metrics=False)["AAA"]
    st = _stack([(new[0], new[1])], NN.validation_fraction, NN.scale_target, [0], True)
    assert warm_start(st, [prev.model.nn_], NN) is None
    assert warm_start(st, [None], NN) is None


@pytest.mark.parametrize("share", [0.25, 1.0])
def test_a_warm_refit_trains_its_share_of_the_epochs_from_the_previous_network(share):
    old, new = _older_and_newer()
    prev = train_many({"AAA": old}, nn=NN, leakage_diagnostic=False, metrics=False)["AAA"]
    counts = {"AAA": (5, 7)}
    data = {"AAA": new}
    cold = train_many(data, nn=NN, leakage_diagnostic=False, counts=counts)["AAA"].model
    warm = train_many(data, nn=NN, leakage_diagnostic=False, counts=counts,
                      warm={"AAA": prev.model.nn_}, warm_share=share)["AAA"].model  # fmt: skip
    assert warm.nn_.n_epochs_ == max(1, math.ceil(share * 5)) and cold.nn_.n_epochs_ == 5
    assert warm.xgb_.best_n_trees_ == cold.xgb_.best_n_trees_ == 7  # boosters are not warm
    X = new[0]
    # a different start gives a different network; without a previous one it is the cold fit
    assert not np.allclose(warm.nn_.predict(X), cold.nn_.predict(X))
    same = train_many(data, nn=NN, leakage_diagnostic=False, counts=counts, warm={},
                      warm_share=share)["AAA"].model  # fmt: skip
    np.testing.assert_array_equal(same.nn_.predict(X), cold.nn_.predict(X))


def test_the_planner_hands_the_last_networks_to_refits_between_picks(monkeypatch):
    import sentinel.ml.training as training
    from sentinel.ml.training import TrainReport
    from sentinel.planner import Planner

    calls: list[tuple[Any, Any, float]] = []

    class Model:
        def __init__(self, tag: str) -> None:
            self.nn_ = tag

    def fake_train_as_of(view: Any, *, as_of: date, counts: Any = None, warm: Any = None,
                         warm_share: float = 0.0, **_: Any) -> TrainReport:  # fmt: skip
        calls.append((None if counts is None else dict(counts), warm, warm_share))
        rep = TrainReport(as_of)
        rep.models = {"AAA": Model(f"net{len(calls)}")}
        rep.predictor = object()  # scoring is not under test
        if counts is None:
            rep.counts = {"AAA": (4, 9)}
        return rep

    monkeypatch.setattr(training, "train_as_of", fake_train_as_of)
    policy = MLPolicy.from_settings(Settings(), select_every=2, warm_start=0.5)
    planner = Planner(policy, universe=lambda d: [])

    class View:
        def __init__(self, day: date) -> None:
            self.day = day

    for k in range(4):
        planner.retrain(View(date(2020, 1, 31) + timedelta(days=30 * k)))
        planner._fit_pending()
    assert calls == [
        (None, None, 0.5),  # a pick: fresh networks
        ({"AAA": (4, 9)}, {"AAA": "net1"}, 0.5),  # resumes the pick's network
        (None, None, 0.5),
        ({"AAA": (4, 9)}, {"AAA": "net3"}, 0.5),
    ]


def test_warm_start_is_a_validated_run_config_key():
    from engine.config import ConfigError, validate_config

    base = {"name": "t", "start": "2020-01-01", "end": "2020-06-30"}
    assert validate_config({**base, "ml": {"warm_start": 0.25}}).ml.warm_start == 0.25
    with pytest.raises(ConfigError, match="warm_start"):
        validate_config({**base, "ml": {"warm_start": 1.5}})
    plain = validate_config(base).config_hash()
    assert validate_config({**base, "ml": {"warm_start": 0.0}}).config_hash() == plain
    assert validate_config({**base, "ml": {"warm_start": 0.5}}).config_hash() != plain
