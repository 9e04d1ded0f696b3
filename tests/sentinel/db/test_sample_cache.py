"""Preloaded training samples answer every read exactly as the SQL read, behind the same guard."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.db import Store
from sentinel.errors import LookAheadError
from tests.future import rewrite_samples_known_after

D0 = date(2020, 1, 1)
SYMBOLS = ["AAA", "BBB", "CC"]


def _rows(draw_rows: list[tuple[int, int, int, int, float]], width: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for s, d, h, lag, label in draw_rows:
        key = (SYMBOLS[s], d, h)
        if key in seen:
            continue
        seen.add(key)
        feats = rng.normal(size=width) * 10.0 ** rng.integers(-8, 8)
        out.append({
            "symbol": SYMBOLS[s], "date": D0 + timedelta(days=d), "horizon_days": h,
            "label": label, "label_known_at": D0 + timedelta(days=d + lag), "features": feats,
        })  # fmt: skip
    return out


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns="features"), b.drop(columns="features"))
    fa, fb = list(a["features"]), list(b["features"])
    assert [r.dtype for r in fa] == [r.dtype for r in fb]
    assert [r.view("u8").tolist() for r in fa] == [r.view("u8").tolist() for r in fb]


row = st.tuples(st.integers(0, 2), st.integers(0, 40), st.sampled_from([5, 14]),
                st.integers(1, 20), st.floats(-1, 1, allow_nan=False))  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row, max_size=40), day=st.integers(0, 70), seed=st.integers(0, 99),
       symbol=st.sampled_from([None, *SYMBOLS]),
       horizon=st.sampled_from([None, 5, 14]),
       chunk=st.sampled_from([1, 3, 20_000]))  # fmt: skip
def test_preloaded_reads_equal_the_sql_reads(
    tmp_path_factory, monkeypatch, rows, day, seed, symbol, horizon, chunk
):
    monkeypatch.setattr("sentinel.db.signals.SAMPLE_CHUNK", chunk)  # decoded in chunks or whole
    path = tmp_path_factory.mktemp("s") / "s.db"
    store = Store(f"sqlite:///{path}")
    store.signals.upsert_training_samples(_rows(rows, 4, seed))
    bound = D0 + timedelta(days=day)
    sql = store.view(bound).signals.get_training_samples(symbol, horizon_days=horizon)
    store.signals.preload_samples()
    assert store.db.samples is not None
    cached = store.view(bound).signals.get_training_samples(symbol, horizon_days=horizon)
    _assert_same(cached, sql)
    # and unbounded, as the session's check reads them
    store.db.samples = None
    sql_all = store.signals.get_training_samples(symbol, horizon_days=horizon)
    store.signals.preload_samples()
    _assert_same(store.signals.get_training_samples(symbol, horizon_days=horizon), sql_all)


def test_chunks_of_different_feature_widths_are_served_as_stored(tmp_path, monkeypatch):
    monkeypatch.setattr("sentinel.db.signals.SAMPLE_CHUNK", 2)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.signals.upsert_training_samples(_rows([(0, d, 14, 1, 0.1) for d in range(5)], 4, 1))
    store.signals.upsert_training_samples(_rows([(1, d, 14, 1, 0.2) for d in range(5)], 6, 2))
    sql = store.signals.get_training_samples()
    store.signals.preload_samples()
    assert store.db.samples is not None and store.db.samples.block is None  # two widths
    got = store.signals.get_training_samples()
    _assert_same(got, sql)
    assert [len(r) for r in got["features"]] == [4] * 5 + [6] * 5


@pytest.fixture
def preloaded(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rows = [(s, d, 14, 14, 0.01 * d) for s in range(3) for d in range(0, 60, 3)]
    store.signals.upsert_training_samples(_rows(rows, 20, 0))
    store.signals.preload_samples()
    return store


def test_a_read_past_the_view_still_raises(preloaded):
    view = preloaded.view(D0 + timedelta(days=30))
    with pytest.raises(LookAheadError):
        view.signals.get_training_samples(known_by=D0 + timedelta(days=31))
    got = view.signals.get_training_samples()
    assert len(got) and (got["label_known_at"] <= pd.Timestamp(D0 + timedelta(days=30))).all()


def test_samples_known_later_change_nothing_before(preloaded):
    day = D0 + timedelta(days=40)
    before = preloaded.view(day).signals.get_training_samples()
    assert rewrite_samples_known_after(preloaded, day, seed=1)
    preloaded.signals.preload_samples()
    _assert_same(preloaded.view(day).signals.get_training_samples(), before)


def test_a_write_drops_the_cache_and_reads_see_it(preloaded):
    preloaded.signals.upsert_training_samples(_rows([(0, 100, 14, 1, 0.5)], 20, 3))
    assert preloaded.db.samples is None
    got = preloaded.signals.get_training_samples(symbol="AAA")
    assert got["label"].iloc[-1] == 0.5 and got["date"].iloc[-1] == pd.Timestamp(
        D0 + timedelta(100)
    )


def test_rows_served_from_the_cache_cannot_be_written(preloaded):
    got = preloaded.signals.get_training_samples()
    first = got["features"].iloc[0].tolist()
    with pytest.raises(ValueError, match="read-only"):
        got["features"].iloc[0][0] = first[0] + 1.0
    assert preloaded.signals.get_training_samples()["features"].iloc[0].tolist() == first


def test_newest_sample_date_is_bounded_by_when_labels_were_known(preloaded):
    assert preloaded.signals.newest_sample_date(14) == D0 + timedelta(days=57)
    assert preloaded.view(D0 + timedelta(days=30)).signals.newest_sample_date(14) == D0 + timedelta(
        days=15
    )
    assert preloaded.signals.newest_sample_date(5) is None
