"""Opening the database: SQLAlchemy engines for a URL, SQLite tuned for bulk loads.

Only connection set-up lives here (no reads, no writes); :class:`~sentinel.db.database.Database`
wraps the engine this makes.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlmodel import SQLModel

from sentinel.db import tables  # noqa: F401  (registers the tables on SQLModel.metadata)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``; with ``create`` the tables are created when missing.

    SQLite files get WAL journaling (readers do not block the writer) and their parent folder
    is created, so ``SENTINEL_DATABASE_URL=sqlite:///some/new/dir/x.db`` just works.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if create:
        SQLModel.metadata.create_all(engine)
    return engine
