"""API fixtures: an app on a temporary SQLite store and data folder, built by the factory.

Nothing global is touched: the store, the settings (token, data dir) and a retrain manager with
tiny epochs are passed to :func:`sentinel.api.create_app`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from sentinel.api import create_app  # noqa: E402
from sentinel.db import Store  # noqa: E402
from sentinel.retrain import RetrainManager  # noqa: E402
from sentinel.settings import Settings  # noqa: E402

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Tiny training so a pass over the demo store takes a second or two.
FAST = {"max_epochs": 2, "validate": False}


def make_settings(tmp_path: Path, **kw) -> Settings:
    values = {
        "database_url": f"sqlite:///{tmp_path / 'api.db'}",
        "data_dir": tmp_path / "data",
        "environment": "test",
        "api_token": TOKEN,
    }
    return Settings(**{**values, **kw})


@pytest.fixture
def api_settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def make_client(api_settings) -> Callable[..., TestClient]:
    """``make_client(store, retrain=None, **manager_kw)``: a TestClient on that store."""
    clients: list[TestClient] = []

    def make(store: Store, retrain: RetrainManager | None = None, **kw) -> TestClient:
        manager = retrain or RetrainManager(store, api_settings, **{**FAST, **kw})
        client = TestClient(create_app(store, api_settings, retrain=manager))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.app.state.retrain.wait(60)
        c.close()


@pytest.fixture
def client(store, make_client) -> TestClient:
    """A client on an empty store."""
    return make_client(store)


@pytest.fixture
def sampled_store(demo_store):
    """The demo store with every symbol's training samples (horizon 14)."""
    from sentinel.ml.dataset import generate_samples

    generate_samples(demo_store, horizon_days=14)
    return demo_store


@pytest.fixture(scope="session")
def recorded_runs(tmp_path_factory):
    """A small demo database holding two real backtests and a two-point sweep, each with its
    outputs on disk: ``(db_url, {"a": id, "b": id, "sweep": [ids]}, root)``."""
    from engine.backtest import run_backtest
    from engine.config import RunConfig
    from engine.sweep import SweepConfig
    from engine.sweep_run import run_sweep
    from sentinel.settings import get_settings
    from tests.conftest import make_demo_db

    root = tmp_path_factory.mktemp("recorded")
    db = make_demo_db(root, 11, 6, "2015-06-01", "2016-12-30")
    url = f"sqlite:///{db}"
    base = {
        "name": "tiny", "start": "2016-06-01", "end": "2016-09-30", "ml": {"mode": "off"},
        "strategy": {"name": "top_n", "params": {"n": 2}}, "initial_cash": 100_000,
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTINEL_DATA_DIR", str(root / "data"))
        get_settings.cache_clear()
        try:
            store = Store(url)
            ids = {
                "a": run_backtest(RunConfig.model_validate(base), store=store,
                                  output=root / "run_a").db_id,
                "b": run_backtest(RunConfig.model_validate({**base, "name": "tiny_n4",
                                  "strategy": {"name": "top_n", "params": {"n": 4}}}),
                                  store=store, output=root / "run_b").db_id,
            }  # fmt: skip
            sweep = SweepConfig.model_validate(
                {"name": "sw", "base": base, "grid": {"strategy.params.n": [1, 3]},
                 "executor": {"kind": "local", "workers": 1}}
            )  # fmt: skip
            result = run_sweep(sweep, store=store, output=root / "sweep")
            ids["sweep"] = [p["db_id"] for p in result.points]
            store.engine.dispose()
        finally:
            get_settings.cache_clear()
    return url, ids, root
