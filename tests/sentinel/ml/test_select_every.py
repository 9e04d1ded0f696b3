"""``ml.select_every``: epoch and tree counts picked at one retrain size the refits after it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from sentinel.ml.batched import train_many
from sentinel.ml.models import NNRegressor
from sentinel.ml.policy import MLPolicy
from sentinel.settings import Settings
from tests.sentinel.ml.conftest import make_data

NN = NNRegressor(max_epochs=6, patience=2)


def _sets() -> dict[str, Any]:
    return {s: make_data(n, seed=i) for i, (s, n) in enumerate((("AAA", 90), ("BBB", 120)))}


def test_given_counts_size_the_only_fit_and_the_others_are_picked():
    data = _sets()
    picked = train_many(data, nn=NN, leakage_diagnostic=False, metrics=False)
    assert all(r.ok and r.counts is not None and r.metrics is None for r in picked.values())
    counts = {"AAA": (3, 7)}
    res = train_many(data, nn=NN, leakage_diagnostic=False, counts=counts)
    a, b = res["AAA"], res["BBB"]
    # AAA: one fit on every sample with exactly the given counts, no held-out block, no metrics
    assert (a.model.nn_.n_epochs_, a.model.xgb_.best_n_trees_) == (3, 7)
    assert a.model.nn_.n_samples_ == 90 and a.counts is None and a.metrics is None
    # BBB: picked now, as without counts (its network does not depend on AAA's jobs)
    assert b.counts == picked["BBB"].counts and b.metrics is not None
    X = data["BBB"][0]
    np.testing.assert_allclose(
        b.model.predict(X), picked["BBB"].model.predict(X), rtol=0, atol=1e-6
    )


def test_counts_need_the_refit():
    with pytest.raises(ValueError, match="refit='all'"):
        train_many(_sets(), nn=NN, refit="train", counts={"AAA": (2, 2)})


def test_the_planner_picks_every_nth_retrain_and_reuses_the_counts_between(monkeypatch):
    import sentinel.ml.training as training
    from sentinel.ml.training import TrainReport
    from sentinel.planner import Planner

    calls: list[dict[str, Any] | None] = []
    seen: list[str] = ["AAA"]

    def fake_train_as_of(view: Any, *, as_of: date, counts: Any = None, **_: Any) -> TrainReport:
        calls.append(None if counts is None else dict(counts))
        rep = TrainReport(as_of)
        picked = [s for s in seen if counts is None or s not in counts]
        rep.counts = {s: (len(calls), 10 * len(calls)) for s in picked}
        return rep

    monkeypatch.setattr(training, "train_as_of", fake_train_as_of)
    policy = MLPolicy.from_settings(Settings(), select_every=3)
    planner = Planner(policy, universe=lambda d: [])

    class View:
        def __init__(self, day: date) -> None:
            self.day = day

    for k in range(5):
        if k == 1:
            seen.append("BBB")  # a symbol first seen between selections is picked alone
        planner.retrain(View(date(2020, 1, 31) + timedelta(days=30 * k)))
        planner._fit_pending()
    assert calls == [
        None,  # retrain 1 picks
        {"AAA": (1, 10)},  # BBB is new: picked in retrain 2, kept after
        {"AAA": (1, 10), "BBB": (2, 20)},
        None,  # retrain 4 picks again
        {"AAA": (4, 40), "BBB": (4, 40)},
    ]


def test_select_every_is_a_validated_run_config_key():
    from engine.config import ConfigError, validate_config

    base = {"name": "x", "start": "2020-01-01", "end": "2020-12-31"}
    cfg = validate_config({**base, "ml": {"select_every": 12}})
    assert cfg.ml.select_every == 12
    with pytest.raises(ConfigError, match="select_every"):
        validate_config({**base, "ml": {"select_every": 0}})


def test_the_neutral_value_keeps_the_config_hash_and_another_changes_it():
    from engine.config import validate_config

    base = {"name": "x", "start": "2020-01-01", "end": "2020-12-31"}
    plain = validate_config(base).config_hash()
    assert validate_config({**base, "ml": {"select_every": 1}}).config_hash() == plain
    assert validate_config({**base, "ml": {"select_every": 4}}).config_hash() != plain


def test_flatten_parses_the_final_boosters_in_training():
    data = _sets()
    res = train_many(data, nn=NN, leakage_diagnostic=False, metrics=False, flatten=True,
                     counts={"AAA": (2, 3)})  # fmt: skip
    plain = train_many(data, nn=NN, leakage_diagnostic=False, metrics=False)
    for sym in data:  # picked now (BBB) and given counts (AAA) alike
        assert "_flat" in vars(res[sym].model.xgb_)
        assert "_flat" not in vars(plain[sym].model.xgb_)
