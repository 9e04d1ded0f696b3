"""The batched trainer's progress hook and the ``sentinel ml train`` log it feeds."""

from __future__ import annotations

import re

from sentinel.ml.batched import train_many
from sentinel.ml.dataset import generate_samples
from sentinel.ml.models import NNRegressor
from tests.sentinel.ml.conftest import make_data
from tests.sentinel.ml.test_training import _invoke, cli_env  # noqa: F401 (a fixture)


def test_train_many_reports_epoch_steps_up_to_both_passes():
    data = {f"S{i}": make_data(80, seed=i) for i in range(2)}
    calls: list[tuple[int, int]] = []
    train_many(data, nn=NNRegressor(max_epochs=5, patience=2), leakage_diagnostic=False,
               progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    done = [d for d, _ in calls]
    assert {t for _, t in calls} == {10}  # inner pass 0..5, refit 5..10
    assert done == sorted(done) and done[-1] == 10 and done[0] >= 1
    assert any(d <= 5 for d in done) and any(d > 5 for d in done)


def test_ml_train_logs_its_epoch_steps(cli_env):  # noqa: F811
    store, _ = cli_env
    generate_samples(store, [s.symbol for s in store.market.securities()[:2]], horizon_days=14)
    store.records.set_settings({"ml_min_samples_per_symbol": 30})
    out = _invoke("train", "--max-epochs", "3", "--no-validate")
    steps = re.findall(r"training: epoch steps: (\d+)/(\d+)", out)
    assert steps and steps[-1] == ("6", "6")
    assert "2 trained" in out
