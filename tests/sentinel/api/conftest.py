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
