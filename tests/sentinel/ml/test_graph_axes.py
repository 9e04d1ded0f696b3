"""The training graph traced with its broadcast axes known statically trains the same networks."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from sentinel.ml._graph import _run_epochs, _Trainer
from sentinel.ml.batched import _stack
from sentinel.ml.models import NNRegressor
from tests.sentinel.ml.conftest import make_data

PARAMS = NNRegressor(max_epochs=7, patience=2, batch_size=16, random_state=3)


@pytest.fixture(scope="module")
def trainers() -> dict[bool, _Trainer]:
    """One graph traced with the rule, one without (each fit resets every variable first)."""
    return {known: _Trainer(20, PARAMS, known_axes=known) for known in (False, True)}


def _train(tr: _Trainer, fixed: bool) -> dict[int, tuple]:
    sets = [make_data(n, seed=i)[:2] for i, n in enumerate((60, 85, 110))]
    st = _stack(sets, PARAMS.validation_fraction, PARAMS.scale_target, [0, 2, 0], fixed)
    goal = np.array([3, 7, 5] if fixed else [PARAMS.max_epochs] * 3)
    patience = int(goal.max()) + 1 if fixed else PARAMS.patience
    return _run_epochs(tr, st, goal, fixed, 3, patience, PARAMS.batch_size, None)


@pytest.mark.parametrize("fixed", [False, True], ids=["early-stopped", "fixed epochs"])
def test_known_broadcast_axes_change_no_bit_of_any_network(trainers, fixed: bool) -> None:
    ref, got = _train(trainers[False], fixed), _train(trainers[True], fixed)
    assert ref.keys() == got.keys() == {0, 1, 2}
    for k in ref:
        (p_ref, m_ref, *rest_ref), (p_got, m_got, *rest_got) = ref[k], got[k]
        assert rest_got == rest_ref or (fixed and rest_got[1:] == rest_ref[1:])  # loss is NaN
        for a, b in zip(p_ref + m_ref, p_got + m_got, strict=True):
            assert a.tobytes() == b.tobytes()


def _body_ops(tr: _Trainer) -> collections.Counter:
    graph = tr.epoch_fn.get_concrete_function().graph.as_graph_def()
    body = [f for f in graph.library.function if "body" in f.signature.name]
    return collections.Counter(n.op for f in body for n in f.node_def)


def test_the_rule_removes_the_run_time_shape_machinery_and_stays_in_its_own_traces(
    trainers,
) -> None:
    from tensorflow.python.ops import math_grad

    from sentinel.ml._tf import tf

    plain, known = _body_ops(trainers[False]), _body_ops(trainers[True])
    assert sum(plain.values()) - sum(known.values()) > 50
    assert known["BroadcastGradientArgs"] < plain["BroadcastGradientArgs"]
    # outside a _Trainer trace the hook answers as TensorFlow does: None-None is not assumed equal
    x, y = tf.TensorShape([None, 3]), tf.TensorShape([None, 1])
    assert math_grad._InferGradientReductionAxes(x, y) == (None, None)
