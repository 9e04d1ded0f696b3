"""Test helpers that rewrite "the future" of a store: delete or scramble the rows after a day.

The look-ahead tests change everything after T and check that nothing decided by T moved. These
writes exist only for the tests, so they live here rather than in the store.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from sentinel.db import Store
from sentinel.timeutil import DateLike, to_date


def delete_where_after(store: Store, table: str, d: DateLike, conn: Connection) -> None:
    """Delete the rows of a dated table after ``d`` (tests use it to erase "the future")."""
    store.db.drop_cache()
    conn.execute(text(f"DELETE FROM {table} WHERE date > :d"), {"d": _param(to_date(d), store)})


def scramble_after(store: Store, table: str, d: DateLike, seed: int, conn: Connection) -> None:
    """Overwrite the bars of a dated table after ``d`` with random positive values (tests)."""
    store.db.drop_cache()
    k = 1.0 + (seed % 997) / 100.0
    conn.execute(
        text(
            f"UPDATE {table} SET open = open * :k, high = high * :k * 1.5, low = low * :k,"
            f" close = close * :k * 1.2, volume = volume * :k + 7 WHERE date > :d"
        ),
        {"k": k, "d": _param(to_date(d), store)},
    )


def _param(d: date, store: Store) -> Any:
    return d.isoformat() if store.db.dialect == "sqlite" else d


def rewrite_samples_known_after(store: Store, d: DateLike, seed: int) -> int:
    """Give every training sample whose label became known after ``d`` a random label and random
    features (tests); returns how many were rewritten."""
    import numpy as np
    import pandas as pd

    later = store.signals.get_training_samples()
    later = later[later["label_known_at"] > pd.Timestamp(to_date(d))]
    rng = np.random.default_rng(seed)
    store.signals.upsert_training_samples(
        r._asdict() | {"date": r.date.date(), "label_known_at": r.label_known_at.date(),
                       "label": float(rng.normal()),
                       "features": rng.normal(size=len(r.features)) * 50}
        for r in later.itertuples(index=False)
    )  # fmt: skip
    return len(later)
