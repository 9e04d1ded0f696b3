"""Shared fixtures: stores on SQLite (always) and PostgreSQL (when CI provides one)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_URL = os.environ.get("SENTINEL_TEST_POSTGRES_URL")


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL cases share one database whose tables each case drops and re-creates, so
    they must never run at once: `make test` runs `pytest -n auto --dist loadfile`, which keeps a
    file's tests in one worker, so they must all live in one file (checked here)."""
    files = {item.path for item in items if item.get_closest_marker("postgres") is not None}
    if len(files) > 1:
        names = ", ".join(sorted(str(f.relative_to(ROOT)) for f in files))
        raise pytest.UsageError(f"PostgreSQL cases must live in one test file, found: {names}")


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def _pg_store():
    from sqlmodel import SQLModel

    from sentinel.db import Store
    from sentinel.db.connection import make_engine

    engine = make_engine(PG_URL, create=False)  # type: ignore[arg-type]
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    return Store(engine=engine)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def any_store(request, tmp_path):
    """An empty store on each backend; the PostgreSQL one skips without a server."""
    from sentinel.db import Store

    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'test.db'}")
    else:
        if not PG_URL:
            pytest.skip("no PostgreSQL: set SENTINEL_TEST_POSTGRES_URL (.ci/run does)")
        store = _pg_store()
    yield store
    store.engine.dispose()


@pytest.fixture
def store(tmp_path):
    """An empty SQLite store in a temporary folder."""
    from sentinel.db import Store

    s = Store(f"sqlite:///{tmp_path / 'test.db'}")
    yield s
    s.engine.dispose()


@pytest.fixture(scope="session")
def demo_universe():
    """A small demo universe (12 symbols, 3 years): fast to generate and to load."""
    from sentinel.data.demo import generate_demo_universe

    return generate_demo_universe(
        seed=11, n_symbols=12, start=date(2015, 1, 1), end=date(2017, 12, 31)
    )


def make_demo_db(folder: Path, seed: int, n_symbols: int, start: str, end: str) -> Path:
    """A SQLite file holding a demo universe (module fixtures copy or reuse it)."""
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.db import Store

    path = folder / "demo.db"
    store = Store(f"sqlite:///{path}")
    install_demo(store, generate_demo_universe(seed, n_symbols, start, end))
    store.engine.dispose()
    return path


@pytest.fixture
def demo_store(store, demo_universe):
    from sentinel.data.demo import install_demo

    install_demo(store, demo_universe)
    return store
