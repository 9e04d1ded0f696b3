"""Correctness of the backtest engine, checked against outside references (issue 5, item 7).

(a) vectorbt replaying a run's fills reproduces its daily equity and cash: the ledger (fills,
    costs, marking at the last known close) is right, not merely self-consistent.
(b) the same config on two fresh stores built from the same seed gives identical results, ML
    included (training is seeded).
(c) on real data, perturbing every bar after a date T leaves every order and fill up to T unchanged
    with walk-forward ML: nothing decided by T can have read past T.
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine.backtest import BacktestResult, run_backtest
from engine.config import RunConfig
from sentinel.db import Store
from tests.conftest import shared_file
from tests.future import scramble_after

DEMO_SEED = 11
DEMO_SPAN = ("2015-01-01", "2017-12-31")
REAL_SYMBOLS = ["AAPL", "GE", "JPM", "MSFT", "PFE", "XOM"]
T_REAL = date(2015, 4, 15)
REAL_DATA_END = "2016-01-31"

# yearly: two retrains in the run (2016-06, 2017-01) keep it quick; (c) retrains quarterly
WALK_FORWARD = {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward",
                "retrain": "yearly", "min_samples": 20, "max_epochs": 2}  # fmt: skip


def _cfg(**over: Any) -> RunConfig:
    """A one-year weekly run on the 8-symbol demo store; ``over`` replaces whole sections."""
    base: dict[str, Any] = {
        "name": "correctness",
        "start": "2016-06-01",
        "end": "2017-05-31",
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 4}},
        "ml": WALK_FORWARD,
        "costs": {"commission_bps": 5, "min_commission": 1, "slippage_bps": 5},
        "initial_cash": 100_000,
        "seed": 3,
    }
    base.update(over)
    return RunConfig.model_validate(base)


def _demo_store(path: Path) -> tuple[Store, pd.DataFrame]:
    """A fresh demo store and the generated bars it holds (the replay's independent prices)."""
    from sentinel.data.demo import generate_demo_universe, install_demo

    universe = generate_demo_universe(DEMO_SEED, 8, *DEMO_SPAN)
    store = Store(f"sqlite:///{path}")
    install_demo(store, universe)
    return store, universe.prices


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, pd.DataFrame]:
    return _demo_store(tmp_path_factory.mktemp("correct") / "a.db")


@pytest.fixture(scope="module")
def wf_run(demo: tuple[Store, pd.DataFrame]) -> BacktestResult:
    return run_backtest(_cfg(), store=demo[0], save=False)


# -- (a) vectorbt replay ----------------------------------------------------------------------
def vbt_replay(result: BacktestResult, bars: pd.DataFrame) -> tuple[pd.Series, pd.Series, Any]:
    """Equity and cash of ``result``'s fills replayed by vectorbt, one column per symbol.

    Sizes, prices (slippage included) and commissions are the run's fills; the calls on a day
    follow the run's fill order (its sells came first), and a symbol without a bar that day is
    valued at its last close, as sentinel marks it.
    """
    import vectorbt as vbt

    trades = result.trades
    assert not trades.duplicated(["date", "symbol"]).any(), "one fill per symbol and day"
    days = result.equity.index
    symbols = sorted(trades["symbol"].unique())
    close = (
        bars[bars["symbol"].isin(symbols)]
        .assign(date=lambda df: pd.to_datetime(df["date"]))
        .pivot(index="date", columns="symbol", values="close")
        .sort_index()
        .ffill()
        .reindex(days, method="ffill")[symbols]
    )
    shape = close.shape
    size = np.full(shape, np.nan)
    price = close.to_numpy(copy=True)
    fees = np.zeros(shape)
    row = days.get_indexer(trades["date"])
    col = pd.Index(symbols).get_indexer(trades["symbol"])
    assert (row >= 0).all() and (col >= 0).all()
    signed = np.where(trades["side"] == "buy", 1.0, -1.0) * trades["quantity"].to_numpy()
    size[row, col] = signed
    price[row, col] = trades["price"].to_numpy()
    fees[row, col] = trades["commission"].to_numpy()
    call_seq = np.tile(np.arange(shape[1]), (shape[0], 1))
    for r, cols in pd.Series(col).groupby(row):
        first = list(cols)  # the run's execution order that day
        call_seq[r] = first + [c for c in range(shape[1]) if c not in first]
    pf = vbt.Portfolio.from_orders(
        close=close, size=size, price=price, fees=0.0, fixed_fees=fees,
        init_cash=result.config.initial_cash, cash_sharing=True, group_by=True,
        call_seq=call_seq, freq="1D",
    )  # fmt: skip
    return pf.value(), pf.cash(), pf


def _assert_replay_matches(result: BacktestResult, bars: pd.DataFrame) -> None:
    assert len(result.trades) > 20, "too few fills for the replay to say anything"
    value, cash, pf = vbt_replay(result, bars)
    assert pf.orders.count() == len(result.trades)  # vectorbt rejected or merged nothing
    filled = pf.orders.records_readable
    np.testing.assert_allclose(filled["Size"].sum(), result.trades["quantity"].sum(), rtol=1e-12)
    eq = result.equity["equity"]
    rel = ((value - eq).abs() / eq).max()
    assert rel <= 1e-6, f"equity differs by {rel:.3g} relative"
    assert ((cash - result.equity["cash"]).abs() / eq).max() <= 1e-6
    # the replay is not trivially equal: the book moved with prices and paid costs
    assert eq.pct_change().abs().max() > 1e-3
    assert result.trades["commission"].sum() > 0


def test_vectorbt_replay_ml_off(demo: tuple[Store, pd.DataFrame]) -> None:
    result = run_backtest(_cfg(ml={"enabled": False, "mode": "off"}), store=demo[0], save=False)
    _assert_replay_matches(result, demo[1])


def test_vectorbt_replay_walk_forward(wf_run: BacktestResult, demo) -> None:
    assert wf_run.log.retrains, "walk-forward retrained nothing"
    _assert_replay_matches(wf_run, demo[1])


@pytest.mark.parametrize("fill", ["next_open", "next_close"])
def test_vectorbt_replay_fractional(demo: tuple[Store, pd.DataFrame], fill: str) -> None:
    cfg = _cfg(
        strategy={"name": "momentum", "params": {"n": 3, "lookback": 40, "skip": 0}},
        ml={"enabled": False, "mode": "off"},
        rebalance={"every": "week_start"},  # min_trade_weight 0.005: no dust trades
        costs={"commission_bps": 10, "min_commission": 1, "slippage_bps": 5, "fill": fill,
               "fractional": True},
    )  # fmt: skip
    result = run_backtest(cfg, store=demo[0], save=False)
    assert (result.trades["quantity"] % 1 != 0).any(), "expected fractional fills"
    _assert_replay_matches(result, demo[1])


def test_replay_catches_a_wrong_fill(wf_run: BacktestResult, demo) -> None:
    """The replay check is sharp: one fill 0.1 % off moves the replayed equity beyond 1e-6."""
    wrong = BacktestResult(**{**wf_run.__dict__, "trades": wf_run.trades.copy()})
    wrong.trades.loc[wrong.trades.index[5], "price"] *= 1.001
    value, _, _ = vbt_replay(wrong, demo[1])
    eq = wf_run.equity["equity"]
    assert ((value - eq).abs() / eq).max() > 1e-6


# -- (b) determinism ---------------------------------------------------------------------------
def test_same_config_twice_is_identical(wf_run: BacktestResult, tmp_path: Path) -> None:
    store, _ = _demo_store(tmp_path / "b.db")
    again = run_backtest(_cfg(), store=store, save=False)
    pd.testing.assert_frame_equal(wf_run.equity, again.equity, check_exact=True)
    pd.testing.assert_frame_equal(wf_run.trades, again.trades, check_exact=True)
    assert wf_run.log.orders == again.log.orders
    assert wf_run.log.retrains == again.log.retrains
    assert list(wf_run.log.decisions) == list(again.log.decisions)
    for d, w in wf_run.log.decisions.items():
        pd.testing.assert_series_equal(w, again.log.decisions[d], check_exact=True, obj=str(d))
    pd.testing.assert_frame_equal(wf_run.predictions, again.predictions, check_exact=True)
    assert wf_run.predictions["ml_score"].notna().any(), "ML took no part in the decisions"


# -- (c) real data: the future perturbed after T changes nothing up to T ------------------------
@pytest.fixture(scope="module")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small universe's bars and the benchmarks, cut to the run's span plus a month (quick to
    import; features and training samples are computed over what the store holds)."""
    prices = pd.read_csv(shared_file("sp500_5y_prices.csv.gz"))
    bench = pd.read_csv(shared_file("benchmarks.csv.gz"))
    folder = tmp_path_factory.mktemp("real")
    out = folder / "prices.csv.gz", folder / "benchmarks.csv.gz"
    keep = [
        prices[prices["symbol"].isin(REAL_SYMBOLS) & (prices["date"] <= REAL_DATA_END)],
        bench[bench["date"].between("2012-01-01", REAL_DATA_END)],
    ]
    for df, path in zip(keep, out, strict=True):
        with gzip.open(path, "wt") as fh:
            df.to_csv(fh, index=False)
    return out


def _real_cfg() -> RunConfig:
    return RunConfig.model_validate({
        "name": "real", "start": "2014-07-01", "end": "2015-12-31",
        "universe": {"kind": "list", "symbols": REAL_SYMBOLS},
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 3}},
        "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward",
               "retrain": "quarterly", "min_samples": 30, "max_epochs": 3},
        "costs": {"commission_bps": 5, "min_commission": 1, "slippage_bps": 5},
        "benchmark": "SPY", "initial_cash": 100_000, "seed": 5,
    })  # fmt: skip


def _real_store(path: Path, files: tuple[Path, Path], scramble_from: date | None) -> Store:
    from sentinel.data.importer import import_files

    store = Store(f"sqlite:///{path}")
    import_files(store, [files[0]], skip_bad=True)
    import_files(store, [files[1]], kind="benchmark", skip_bad=True)
    if scramble_from is not None:
        with store.db.transaction() as conn:
            scramble_after(store, "prices", scramble_from, 4242, conn)
            scramble_after(store, "benchmark_prices", scramble_from, 4242, conn)
    return store


def test_perturbed_future_changes_nothing_up_to_t(real_files, tmp_path: Path) -> None:
    t, ts = T_REAL, pd.Timestamp(T_REAL)
    a = run_backtest(_real_cfg(), store=_real_store(tmp_path / "a.db", real_files, None),
                     save=False)  # fmt: skip
    perturbed = _real_store(tmp_path / "b.db", real_files, t)
    assert (
        perturbed.market.get_prices("AAPL", days=1, end_date=date(2015, 12, 31))["close"].iloc[0]
        > 300
    )
    b = run_backtest(_real_cfg(), store=perturbed, save=False)

    retrains_before = [d for d in a.log.retrains if d <= t]
    assert len(retrains_before) >= 3 and retrains_before == [d for d in b.log.retrains if d <= t]
    used = a.predictions[a.predictions["date"] <= ts]
    assert used["ml_score"].notna().any(), "no model was used before T: the test proves little"
    pd.testing.assert_frame_equal(
        used.reset_index(drop=True),
        b.predictions[b.predictions["date"] <= ts].reset_index(drop=True),
        check_exact=True,
    )
    orders_a = [o for o in a.log.orders if o.decided_on <= t]
    orders_b = [o for o in b.log.orders if o.decided_on <= t]
    assert len(orders_a) > 20 and orders_a == orders_b
    fills_a = a.trades[a.trades["date"] <= ts].reset_index(drop=True)
    fills_b = b.trades[b.trades["date"] <= ts].reset_index(drop=True)
    assert len(fills_a) > 20
    pd.testing.assert_frame_equal(fills_a, fills_b, check_exact=True)
    pd.testing.assert_frame_equal(a.equity.loc[:ts], b.equity.loc[:ts], check_exact=True)
    # ... and the perturbation did reach the run after T (so the comparison above can fail)
    assert [o for o in a.log.orders if o.decided_on > t] != [
        o for o in b.log.orders if o.decided_on > t
    ]
    assert not np.isclose(a.equity["equity"].iloc[-1], b.equity["equity"].iloc[-1], rtol=1e-3)
