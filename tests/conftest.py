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


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory, demo_universe) -> Path:
    """A SQLite file holding :func:`demo_universe`, installed once per session (read only)."""
    from sentinel.data.demo import install_demo
    from sentinel.db import Store

    path = tmp_path_factory.mktemp("demo_template") / "demo.db"
    store = Store(f"sqlite:///{path}")
    install_demo(store, demo_universe)
    store.engine.dispose()
    return path


@pytest.fixture
def demo_store(store, demo_template):
    """``store`` holding the demo universe: the template's pages copied in by SQLite's backup
    API (the same database as installing it again, without re-validating and re-writing every
    bar in each test; the store has read nothing yet, so it has no cache to go stale)."""
    import sqlite3

    template = sqlite3.connect(demo_template)
    raw = store.engine.raw_connection()
    try:
        template.backup(raw.driver_connection)
    finally:
        raw.close()
        template.close()
    return store


@pytest.fixture
def run_cli(monkeypatch, capfd):
    """``run_cli(*args, env={...}, cwd=path)``: ``sentinel ARGS`` in this process, as a
    ``subprocess.CompletedProcess`` (exit code, stdout, stderr); a subprocess costs a second of
    imports per call. Like a fresh process: only the given SENTINEL_* variables are set, settings
    are read afresh, warnings print to stderr by Python's default rules, and an uncaught
    exception prints its traceback and exits 1. Tests about processes (imports, kills, signals)
    still start a real one."""
    import subprocess
    import sys
    import traceback
    import warnings

    from cli._common import state
    from cli.main import main
    from sentinel.settings import get_settings

    for field in ("debug", "database_url", "create"):  # the options main sets: restored after
        monkeypatch.setattr(state, field, getattr(state, field))

    def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
        for name in list(os.environ):
            if name.startswith("SENTINEL_"):
                monkeypatch.delenv(name)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["sentinel", *args])
        get_settings.cache_clear()
        capfd.readouterr()
        code: int | str | None = 0
        with warnings.catch_warnings():
            warnings.resetwarnings()  # a fresh interpreter's filters, printed to stderr
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                             ResourceWarning):  # fmt: skip
                warnings.simplefilter("ignore", category)
            warnings.showwarning = _show_warning
            try:
                main()
            except SystemExit as exc:
                code = exc.code
                if isinstance(code, str):  # sys.exit("text"): printed, exit code 1
                    print(code, file=sys.stderr)
            except Exception:  # noqa: BLE001 - what the interpreter does with an uncaught one
                traceback.print_exc()
                code = 1
            finally:
                get_settings.cache_clear()
        out = capfd.readouterr()
        code = code if isinstance(code, int) else (0 if code is None else 1)
        return subprocess.CompletedProcess(["sentinel", *args], code, out.out, out.err)

    return run


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning to the current stderr, as an interpreter without pytest does."""
    import sys
    import warnings

    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
