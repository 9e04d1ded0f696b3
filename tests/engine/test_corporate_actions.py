"""Splits, dividends and delistings applied to the book, and runs on raw prices + actions."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from engine.backtest import run_backtest
from engine.config import RunConfig
from engine.corporate_actions import BookEvent, CorporateActions
from engine.portfolio import Order, Portfolio
from sentinel.data.demo import generate_demo_universe, install_demo
from sentinel.data.importer import import_files
from sentinel.db import Store
from sentinel.errors import ConfigError


class _Broker:
    def __init__(self, pending: list[Order]):
        self.pending = pending


def _store(tmp_path, name: str, actions: str = "", listings: str = "") -> Store:
    store = Store(f"sqlite:///{tmp_path / name}")
    bars = tmp_path / f"{name}.bars.csv"
    bars.write_text(
        "date,symbol,open,high,low,close,volume\n"
        "2020-01-02,AAA,100,100,100,100,10\n2020-01-03,AAA,50,50,50,50,10\n"
        "2020-01-06,AAA,50,50,50,50,10\n2020-01-02,BBB,10,10,10,10,10\n"
    )
    files = [bars]
    for kind, text in (("a", actions), ("l", listings)):
        if text:
            files.append(tmp_path / f"{name}.{kind}.csv")
            files[-1].write_text(text)
    import_files(store, files)
    return store


def test_a_split_changes_neither_equity_nor_value_and_restates_pending_orders(tmp_path):
    store = _store(tmp_path, "s.db", "date,symbol,split_coefficient\n2020-01-03,AAA,2\n")
    book = Portfolio(cash=1000.0, positions={"AAA": 10.0}, last_price={"AAA": 100.0})
    broker = _Broker([Order("r:1:AAA", "AAA", 4.0, date(2020, 1, 2)),
                      Order("r:1:BBB", "BBB", 3.0, date(2020, 1, 2))])  # fmt: skip
    hook = CorporateActions(store)
    hook.apply(date(2020, 1, 2), book, broker, "r")
    assert book.mark(date(2020, 1, 2), {"AAA": 100.0}) == 2000.0
    events = hook.apply(date(2020, 1, 3), book, broker, "r")
    assert events == [BookEvent(date(2020, 1, 3), "AAA", "split", 10.0, 2.0)]
    assert book.positions["AAA"] == 20.0
    assert book.mark(date(2020, 1, 3), {"AAA": 50.0}) == 2000.0  # the split day: no change
    assert [o.quantity for o in broker.pending] == [8.0, 3.0]
    assert hook.apply(date(2020, 1, 6), book, broker, "r") == []  # applied once


def test_a_dividend_is_paid_into_cash_after_tax_on_its_ex_date(tmp_path):
    store = _store(tmp_path, "d.db", "date,symbol,dividend\n2020-01-06,AAA,2\n")
    book = Portfolio(cash=0.0, positions={"AAA": 10.0}, last_price={"AAA": 50.0})
    hook = CorporateActions(store, dividend_tax=0.25)
    hook.apply(date(2020, 1, 3), book, _Broker([]), "r")
    assert book.cash == 0.0
    events = hook.apply(date(2020, 1, 6), book, _Broker([]), "r")
    assert book.cash == pytest.approx(15.0) and events[0].kind == "dividend"


def test_a_delisted_position_is_settled_at_its_cash_out_price_and_recorded(tmp_path):
    store = _store(tmp_path, "l.db", listings="symbol,from,to,reason,cash_out\n"
                   "BBB,2019-01-01,2020-01-02,acquired,12.5\n")  # fmt: skip
    book = Portfolio(cash=0.0, positions={"BBB": 4.0}, last_price={"BBB": 10.0})
    hook = CorporateActions(store)
    assert hook.apply(date(2020, 1, 2), book, _Broker([]), "r") == []  # still listed
    events = hook.apply(date(2020, 1, 3), book, _Broker([]), "r")
    assert "BBB" not in book.positions and book.cash == pytest.approx(50.0)
    assert events[0].order_id == "r:2020-01-03:BBB:delisted" and events[0].price == 12.5
    assert events[1] == BookEvent(date(2020, 1, 3), "BBB", "delisting", 4.0, 50.0)
    assert book.trades_frame()["symbol"].tolist() == ["BBB"]


def _raw_and_actions(u, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices as traded and the actions that turn them back into ``u``'s (total-return) series.

    Each symbol gets a split and a few dividends (yield y on the previous close): the factor of an
    action is 1/r - y, so raw(t) = adjusted(t) * G(t) / G(end).
    """
    rng = np.random.default_rng(seed)
    raw_parts, acts = [], []
    for sym, g in u.prices.groupby("symbol"):
        g = g.sort_values("date").reset_index(drop=True)
        n = len(g)
        step, split, yld = np.ones(n), np.ones(n), np.zeros(n)
        split[int(rng.integers(50, n - 50))] = float(rng.choice([2.0, 3.0, 0.5]))
        for i in rng.choice(np.arange(30, n), 4, replace=False):
            yld[i] = rng.uniform(0.005, 0.03)
        step = 1.0 / split - yld
        big = np.cumprod(step)
        k = big / big[-1]
        raw = g.copy()
        for c in ("open", "high", "low", "close"):
            raw[c] = g[c] * k
        raw["volume"] = (g["volume"] * np.cumprod(split)[-1] / np.cumprod(split)).round()
        raw_parts.append(raw)
        for i in np.flatnonzero((split != 1) | (yld > 0)):
            acts.append((g["date"].iloc[i].strftime("%Y-%m-%d"), sym, yld[i] * raw["close"][i - 1],
                         split[i]))  # fmt: skip
    frame = pd.DataFrame(acts, columns=["date", "symbol", "dividend", "split_coefficient"])
    return pd.concat(raw_parts, ignore_index=True), frame


def test_raw_prices_plus_actions_match_total_return_prices_in_daily_returns(tmp_path):
    u = generate_demo_universe(seed=3, n_symbols=5, start=date(2015, 1, 1), end=date(2016, 6, 30))
    adjusted = Store(f"sqlite:///{tmp_path / 'adj.db'}")
    install_demo(adjusted, u)
    raw_prices, actions = _raw_and_actions(u, seed=9)
    raw = Store(f"sqlite:///{tmp_path / 'raw.db'}")
    install_demo(raw, dataclasses.replace(u, prices=raw_prices))
    actions.to_csv(tmp_path / "actions.csv", index=False)
    import_files(raw, [tmp_path / "actions.csv"])
    cfg = RunConfig.model_validate({
        "name": "tr", "start": "2015-03-02", "end": "2016-06-30",
        "rebalance": {"every": "monthly"}, "strategy": {"name": "top_n", "params": {"n": 2}},
        "ml": {"enabled": False},
        "costs": {"commission_bps": 0, "min_commission": 0, "slippage_bps": 0,
                  "fractional": True},
        "initial_cash": 100_000,
    })  # fmt: skip
    a = run_backtest(cfg, store=adjusted, save=False, write_report=False)
    r = run_backtest(cfg, store=raw, save=False, write_report=False)
    assert r.metrics["n_splits_applied"] >= 1 and r.metrics["n_dividends_paid"] >= 1
    assert set(a.log.decisions) == set(r.log.decisions)
    for day, w in a.log.decisions.items():  # the same signals: the same decisions
        pd.testing.assert_series_equal(w.sort_index(), r.log.decisions[day].sort_index())
    ra, rr = a.equity["equity"].pct_change().dropna(), r.equity["equity"].pct_change().dropna()
    # dividends wait in cash until the next rebalance: a few bp a day at most
    assert float((ra - rr).abs().max()) < 2e-3
    total_a = a.equity["equity"].iloc[-1] / cfg.initial_cash - 1
    total_r = r.equity["equity"].iloc[-1] / cfg.initial_cash - 1
    assert total_r == pytest.approx(total_a, abs=0.01)


def test_an_index_universe_trades_the_members_of_the_day_and_is_not_flagged(tmp_path):
    from engine.session import SURVIVORSHIP_WARNING, build_session

    u = generate_demo_universe(seed=2, n_symbols=4, start=date(2016, 1, 1), end=date(2016, 12, 30))
    store = Store(f"sqlite:///{tmp_path / 'ix.db'}")
    install_demo(store, u)
    a, b = sorted(u.securities["symbol"])[:2]
    members = tmp_path / "m.csv"
    members.write_text(f"index,symbol,from,to\nSP,{a},2016-01-01,2016-06-30\nSP,{b},2016-07-01,\n")
    import_files(store, [members])
    base = {"name": "ix", "start": "2016-03-01", "end": "2016-12-30", "ml": {"enabled": False}}
    cfg = RunConfig.model_validate({**base, "universe": {"kind": "index", "name": "SP"}})
    session = build_session(cfg, store)
    assert not session.survivorship_biased and SURVIVORSHIP_WARNING not in session.warnings
    assert set(session.universe(date(2016, 6, 30))) <= {a}
    assert set(session.universe(date(2016, 11, 1))) <= {b}
    assert session.universe(date(2016, 11, 1)) == [b]
    survivors = build_session(RunConfig.model_validate(base), store)
    assert survivors.survivorship_biased and SURVIVORSHIP_WARNING in survivors.warnings
    bad = RunConfig.model_validate({**base, "universe": {"kind": "index", "name": "NOPE"}})
    with pytest.raises(ConfigError, match="universe.name: no membership for index 'NOPE'"):
        build_session(bad, store)


def test_a_symbol_whose_bars_stop_leaves_and_its_position_is_settled(tmp_path):
    u = generate_demo_universe(seed=4, n_symbols=3, start=date(2014, 1, 1), end=date(2016, 12, 30))
    prices = u.prices
    gone = sorted(prices["symbol"].unique())[0]
    stop = pd.Timestamp("2016-09-01")
    u = dataclasses.replace(u, prices=prices[(prices["symbol"] != gone) | (prices["date"] < stop)])
    store = Store(f"sqlite:///{tmp_path / 'stop.db'}")
    install_demo(store, u)
    cfg = RunConfig.model_validate({
        "name": "stop", "start": "2016-06-01", "end": "2016-12-30",
        "rebalance": {"every": "weekly", "weekday": "friday"}, "ml": {"enabled": False},
        "strategy": {"name": "top_n", "params": {"n": 3}},
        "universe": {"kind": "all", "stale_after": 5},
    })  # fmt: skip
    result = run_backtest(cfg, store=store, save=False, write_report=False)
    assert any(gone in w.index for w in result.log.decisions.values())  # it was held
    settled = [f for f in result.log.settlements if f.symbol == gone]
    assert len(settled) == 1 and settled[0].day > stop.date()
    last = prices.loc[(prices["symbol"] == gone) & (prices["date"] < stop), "close"].iloc[-1]
    assert settled[0].price == pytest.approx(last)
    later = [w for d, w in result.log.decisions.items() if d > settled[0].day]
    assert later and all(gone not in w.index for w in later)  # never scored again
    assert result.metrics["n_delisting_settlements"] == 1.0


def test_a_resumed_book_applies_the_actions_since_its_last_day_and_no_earlier_one(tmp_path):
    """Live mode: a new process resumes after the last processed day (01-02); the split of
    01-03 (a day it skipped) is applied on 01-06 with the dividend of 01-06, the split of
    01-02 (already in the book) is not applied again."""
    store = _store(
        tmp_path, "r.db",
        "date,symbol,split_coefficient,dividend\n"
        "2020-01-02,BBB,3,\n2020-01-03,AAA,2,\n2020-01-06,AAA,,1\n",
    )  # fmt: skip
    book = Portfolio(cash=0.0, positions={"AAA": 10.0, "BBB": 1.0},
                     last_price={"AAA": 100.0, "BBB": 10.0})  # fmt: skip
    new_book = Portfolio(cash=0.0, positions={"AAA": 10.0}, last_price={"AAA": 100.0})
    started = CorporateActions(store).apply(date(2020, 1, 6), new_book, _Broker([]), "r")
    assert [e.kind for e in started] == ["dividend"]  # a new book: earlier actions are history
    hook = CorporateActions(store)
    hook.resume_after(date(2020, 1, 2))
    events = hook.apply(date(2020, 1, 6), book, _Broker([]), "r")
    assert [(e.day, e.symbol, e.kind) for e in events] == [
        (date(2020, 1, 6), "AAA", "split"), (date(2020, 1, 6), "AAA", "dividend"),
    ]  # fmt: skip
    assert book.positions == {"AAA": 20.0, "BBB": 1.0}
    assert book.cash == pytest.approx(20.0)
    with pytest.raises(ValueError, match="only move forward"):
        hook.apply(date(2020, 1, 3), book, _Broker([]), "r")
