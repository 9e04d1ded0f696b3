"""Walk-forward training fanned out over Dask gives the in-process models (ml.train_executor)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import RunConfig, TrainExecutorConfig
from engine.train_executor import DaskChunkMapper, train_mapper
from sentinel.db import Store
from sentinel.errors import ConfigError
from sentinel.ml.dataset import generate_samples
from sentinel.ml.training import _chunks, train_as_of


@pytest.fixture(scope="module", autouse=True)
def _distributed() -> None:
    """Dask is imported when these tests run, not when the module is collected (every xdist
    worker collects every module; one of them runs these)."""
    pytest.importorskip("distributed")


TINY = {"max_epochs": 2, "min_samples": 30, "validate": False, "seed": 3}


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, demo_universe):
    """A demo store with training samples for five symbols."""
    from sentinel.data.demo import install_demo

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('dask') / 'd.db'}")
    install_demo(store, demo_universe)
    syms = [s.symbol for s in store.market.securities()[:5]]
    generate_samples(store, syms, horizon_days=14)
    yield store, syms
    store.engine.dispose()


def test_chunks_cover_every_symbol_once_in_order():
    data = {f"S{i}": i for i in range(7)}
    parts = _chunks(data, 3)
    assert [len(p) for p in parts] == [3, 2, 2]
    assert [k for p in parts for k in p] == list(data)
    assert _chunks(data, 50) == [{k: v} for k, v in data.items()]  # never an empty chunk


@pytest.mark.slow  # two worker processes import TensorFlow: ~70 s on a loaded 2-core machine
def test_two_dask_workers_train_the_in_process_models(sampled):
    store, syms = sampled
    day = store.market.trading_days()[-1]
    local = train_as_of(store.view(day), as_of=day, symbols=syms, **TINY)
    mapper = DaskChunkMapper(TrainExecutorConfig(kind="dask", workers=2))
    try:
        fanned = train_as_of(store.view(day), as_of=day, symbols=syms, map_chunks=mapper, **TINY)
        assert len(mapper._client.scheduler_info()["workers"]) == 2  # two processes did it
    finally:
        mapper.close()
    assert sorted(local.models) == sorted(fanned.models) == sorted(syms)
    assert local.skipped == fanned.skipped and local.failed == fanned.failed
    X = np.random.default_rng(0).normal(size=(16, len(local.features)))
    for sym in syms:
        a, b = local.models[sym].predict(X), fanned.models[sym].predict(X)
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
        assert local.metrics[sym]["training_samples"] == fanned.metrics[sym]["training_samples"]


def test_unreachable_scheduler_is_one_config_error_line(sampled, quick_dask_refusal):
    store, syms = sampled
    day = store.market.trading_days()[-1]
    mapper = DaskChunkMapper(TrainExecutorConfig(kind="dask", address="tcp://127.0.0.1:9"))
    with pytest.raises(ConfigError) as err:
        train_as_of(store.view(day), as_of=day, symbols=syms, map_chunks=mapper, **TINY)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("ml.train_executor.address: cannot reach the Dask scheduler at tcp://")


def test_run_config_key_defaults_local_and_leaves_the_hash_alone():
    base = {"start": "2016-01-04", "end": "2016-06-30"}
    local = RunConfig.model_validate(base)
    dask = RunConfig.model_validate({**base, "ml": {"train_executor": {"kind": "dask"}}})
    assert train_mapper(local.ml.train_executor) is None
    assert isinstance(train_mapper(dask.ml.train_executor), DaskChunkMapper)
    assert local.config_hash() == dask.config_hash()  # where training runs, not what it computes
    with pytest.raises(ValueError, match="train_executor"):
        RunConfig.model_validate({**base, "ml": {"train_executor": {"kind": "ray"}}})


def test_session_gives_the_walk_forward_planner_its_mapper(demo_store):
    """The run config's key reaches the planner (the composition root wires it), and only
    for walk-forward runs; no cluster starts until a retrain asks."""
    from engine.session import build_session

    base = {"start": "2016-06-01", "end": "2016-12-30", "universe": {"kind": "all"}}
    dask = {"train_executor": {"kind": "dask", "workers": 2}}
    wf = build_session(
        RunConfig.model_validate({**base, "ml": {"mode": "walk_forward", **dask}}), demo_store
    )
    assert isinstance(wf.planner.train_map, DaskChunkMapper)
    assert wf.planner.train_map.workers == 2 and wf.planner.train_map._client is None
    off = build_session(
        RunConfig.model_validate({**base, "ml": {"mode": "off", **dask}}), demo_store
    )
    assert off.planner.train_map is None
    local = build_session(
        RunConfig.model_validate({**base, "ml": {"mode": "walk_forward"}}), demo_store
    )
    assert local.planner.train_map is None
