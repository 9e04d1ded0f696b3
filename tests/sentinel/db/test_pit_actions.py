"""Prices adjusted point in time: reads as of T use only the corporate actions dated <= T."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from sentinel.data.demo import generate_demo_universe, install_demo
from sentinel.db import Store
from sentinel.errors import LookAheadError
from sentinel.ml_features import features_as_of
from tests.sentinel.conftest import random_walk

START, END = date(2016, 1, 1), date(2016, 12, 30)


def _store_with(tmp_path, name: str, bars: pd.DataFrame, actions: list[tuple]) -> Store:
    store = Store(f"sqlite:///{tmp_path / name}")
    long = bars.reset_index().assign(symbol="AAA")
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    store.db.upsert_tuples(
        "prices", ["symbol", "date"], ["date", "symbol", "open", "high", "low", "close", "volume"],
        list(long[["date", "symbol", "open", "high", "low", "close", "volume"]]
             .itertuples(index=False, name=None)),
    )  # fmt: skip
    store.db.upsert_tuples(
        "securities", ["symbol"], ["symbol", "universe_from"], [("AAA", long["date"].iloc[0])]
    )
    store.db.upsert_tuples(
        "corporate_actions", ["symbol", "date"], ["symbol", "date", "split", "dividend"], actions
    )
    return store


def test_a_split_changes_no_signal(tmp_path):
    bars = random_walk(400, seed=3)
    split_day = bars.index[300]
    raw = bars.copy()
    after = raw.index >= split_day
    for c in ("open", "high", "low", "close"):
        raw.loc[after, c] = raw.loc[after, c] / 2.0  # a 2:1 split as traded
    raw.loc[after, "volume"] = raw.loc[after, "volume"] * 2.0
    plain = _store_with(tmp_path, "plain.db", bars, [])
    split = _store_with(tmp_path, "split.db", raw, [("AAA", split_day.strftime("%Y-%m-%d"), 2, 0)])
    for t in (bars.index[299], split_day, bars.index[350], bars.index[-1]):
        d = t.date()
        a = plain.view(d).market.get_prices("AAA", days=260)
        b = split.view(d).market.get_prices("AAA", days=260)
        scale = 2.0 if t >= split_day else 1.0
        np.testing.assert_allclose(b["close"] * scale, a["close"], rtol=1e-12)
        np.testing.assert_allclose(b["volume"] / scale, a["volume"], rtol=1e-12)
        np.testing.assert_allclose(
            features_as_of(b, t), features_as_of(a, t), rtol=1e-9, atol=1e-12
        )
        assert b["close"].iloc[-1] == pytest.approx(raw.loc[:t, "close"].iloc[-1])  # as traded
        panel = split.view(d).market.get_close_panel(days=30)["AAA"]
        np.testing.assert_allclose(panel, b["close"].iloc[-30:], rtol=1e-12)


def test_a_dividend_adjusts_earlier_prices_by_one_minus_d_over_the_previous_close(tmp_path):
    bars = random_walk(30, seed=4)
    ex = bars.index[20]
    prev = bars["close"].iloc[19]
    store = _store_with(tmp_path, "d.db", bars, [("AAA", ex.strftime("%Y-%m-%d"), 1, 1.5)])
    before = store.view(bars.index[19].date()).market.get_prices("AAA")
    on = store.view(ex.date()).market.get_prices("AAA")
    stored = store.db.rows("SELECT close FROM prices WHERE date < :d ORDER BY date", d=ex.date())
    np.testing.assert_array_equal(before["close"], [r[0] for r in stored])  # nothing known yet
    np.testing.assert_allclose(on["close"].iloc[:20], bars["close"].iloc[:20] * (1 - 1.5 / prev))
    assert on["close"].iloc[20] == pytest.approx(bars["close"].iloc[20])
    with pytest.raises(LookAheadError):
        store.view(ex.date()).market.corporate_actions(end=ex.date() + timedelta(days=1))


@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("pitact") / "base.db"
    store = Store(f"sqlite:///{path}")
    install_demo(store, generate_demo_universe(5, 4, str(START), str(END)))
    days = store.market.trading_days()
    syms = store.market.universe_symbols(days[-1])
    rows = [(s, days[i].isoformat(), 2.0 if i % 3 == 0 else 1.0, 0.4 if i % 3 else 0.0)
            for k, s in enumerate(syms) for i in range(20 + k, len(days), 45)]  # fmt: skip
    store.db.upsert_tuples(
        "corporate_actions", ["symbol", "date"], ["symbol", "date", "split", "dividend"], rows
    )
    store.engine.dispose()
    return path


def _reads(store: Store, t: date) -> dict:
    store.market.preload()  # as in a run (the SQL path is compared with it in test_store_reads)
    view = store.view(t).market
    sym = store.market.securities()[0].symbol
    return {
        "one": view.get_prices(sym, days=60),
        "panel": view.get_price_panel(days=30),
        "wide": view.get_close_panel(days=30),
        "actions": view.corporate_actions(),
    }


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offset=st.integers(min_value=40, max_value=(END - START).days - 5),
    mode=st.sampled_from(["delete", "scramble", "add"]),
    seed=st.integers(0, 10**6),
)
def test_changing_actions_after_t_changes_no_read_up_to_t(base_db, tmp_path, offset, mode, seed):
    t = START + timedelta(days=offset)
    copy = tmp_path / f"copy-{offset}-{mode}-{seed}.db"
    shutil.copy(base_db, copy)
    store = Store(f"sqlite:///{copy}")
    before = _reads(store, t)
    rng = np.random.default_rng(seed)
    with store.db.transaction() as conn:
        d = {"d": t.isoformat()}
        if mode == "delete":
            conn.execute(text("DELETE FROM corporate_actions WHERE date > :d"), d)
        elif mode == "scramble":
            conn.execute(
                text("UPDATE corporate_actions SET split = split * :k, dividend = dividend + :v "
                     "WHERE date > :d"), {**d, "k": float(rng.uniform(0.2, 5)),
                                          "v": float(rng.uniform(0, 0.5))},
            )  # fmt: skip
        else:
            later = [x for x in store.market.trading_days() if x > t]
            if later:
                day = later[int(rng.integers(len(later)))].isoformat()
                conn.execute(
                    text("INSERT OR REPLACE INTO corporate_actions VALUES "
                         "(:s, :day, :k, 0.1)"),
                    {"s": store.market.securities()[0].symbol, "day": day,
                     "k": float(rng.uniform(0.2, 5))},
                )  # fmt: skip
    store.db.drop_cache()
    after = _reads(store, t)
    for key, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, after[key], obj=key)
        else:
            assert value == after[key], key
    store.engine.dispose()
