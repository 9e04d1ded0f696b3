"""Property tests: reads as of T do not change when anything after T changes or disappears."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.data.demo import generate_demo_universe, install_demo
from sentinel.db import Store
from sentinel.errors import LookAheadError
from tests.future import delete_where_after, scramble_after

START, END = date(2016, 1, 1), date(2016, 12, 30)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("pit") / "base.db"
    store = Store(f"sqlite:///{path}")
    install_demo(store, generate_demo_universe(5, 6, str(START), str(END)))
    store.engine.dispose()
    return path


def _reads(store: Store, t: date) -> dict[str, pd.DataFrame | list]:
    sym = store.market.universe_symbols(t)[0]
    return {
        "one": store.market.get_prices(sym, days=60, end_date=t),
        "panel": store.market.get_price_panel(days=30, end_date=t),
        "bench": store.market.get_benchmark(days=30, end_date=t),
        "universe": store.market.universe_symbols(t),
        "days": store.market.trading_days(end=t),
    }


def _perturb_future(store: Store, t: date, mode: str, seed: int) -> None:
    """Replace every bar after ``t`` with random values, or delete them."""
    with store.db.transaction() as conn:
        for table in ("prices", "benchmark_prices"):
            if mode == "delete":
                delete_where_after(store, table, t, conn)
            else:
                scramble_after(store, table, t, seed, conn)


days = st.integers(min_value=40, max_value=(END - START).days - 5)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset=days, mode=st.sampled_from(["delete", "scramble"]), seed=st.integers(0, 10**6))
def test_reads_as_of_t_ignore_the_future(base_db, tmp_path, offset, mode, seed):
    t = START + timedelta(days=offset)
    copy = tmp_path / f"copy-{offset}-{mode}-{seed}.db"
    shutil.copy(base_db, copy)
    store = Store(f"sqlite:///{copy}")
    before = _reads(store, t)
    _perturb_future(store, t, mode, seed)
    after = _reads(store, t)
    for key, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, after[key], obj=key)
        else:
            assert value == after[key], key
    store.engine.dispose()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sim=days, ask=days)
def test_a_read_past_the_simulation_date_always_raises(base_db, sim, ask):
    store = Store(f"sqlite:///{base_db}")
    t, r = START + timedelta(days=sim), START + timedelta(days=ask)
    store = store.view(t)
    reads = [
        lambda: store.market.get_prices("DAA", days=5, end_date=r),
        lambda: store.market.get_price_panel(days=5, end_date=r),
        lambda: store.market.get_benchmark(end_date=r),
        lambda: store.signals.get_score("DAA", as_of_date=r),
        lambda: store.signals.get_ml_prediction_as_of("DAA", r),
        lambda: store.signals.get_training_samples("DAA", known_by=r),
        lambda: store.market.get_sentiment("DAA", end_date=r),
        lambda: store.signals.get_regime_state("DAA", r),
        lambda: store.market.universe(r),
    ]
    for read in reads:
        if r > t:
            with pytest.raises(LookAheadError):
                read()
        else:
            read()
    store.engine.dispose()
