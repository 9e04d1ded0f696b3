"""ONE loop for backtest, live, the sweep's score pass and the prediction backfill.

The clock, the broker and the decider are injected (``engine.session`` builds them from a run
config); nothing else differs. For each tick: make the store view bound to the day (the only
place "now" is set), let the broker fill yesterday's orders, mark the book, retrain when due, and
on a rebalance day ask the decider for target weights and turn them into orders for the next
session. The decider reads only through the view it is handed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

from engine.broker import Broker, orders_for_targets
from engine.clock import EventType, Tick
from engine.corporate_actions import BookEvent, CorporateActions, without_bar
from engine.feed import BarFeed, Closes
from engine.portfolio import Order, Portfolio
from sentinel.db import Store
from strategies.base import Targets


class Decider(Protocol):
    """What the runner asks on retrain and rebalance days (``engine.session.ScoredStrategy``).

    A decider with ``needs_weights = False`` is handed an empty Series as ``current_weights``.
    ``plan`` returns the target weights as a Series, or as :class:`~strategies.base.Targets`
    arrays (a strategy's array path: no Series is built unless the decision is read).
    """

    def retrain(self, view: Store) -> None: ...

    def plan(self, view: Store, current_weights: pd.Series) -> pd.Series | Targets: ...


class DecisionLog(MutableMapping[date, pd.Series]):
    """Rebalance day -> target weights (a Series). A decision made as :class:`Targets` arrays
    is kept as such and turned into its Series when first read: most runs never read them."""

    def __init__(self) -> None:
        self._by_day: dict[date, pd.Series | Targets] = {}

    def __getitem__(self, day: date) -> pd.Series:
        w = self._by_day[day]
        if isinstance(w, Targets):
            w = self._by_day[day] = w.series()
        return w

    def __setitem__(self, day: date, weights: pd.Series | Targets) -> None:
        self._by_day[day] = weights

    def __delitem__(self, day: date) -> None:
        del self._by_day[day]

    def __iter__(self) -> Iterator[date]:
        return iter(self._by_day)

    def __len__(self) -> int:
        return len(self._by_day)

    def __contains__(self, day: object) -> bool:
        return day in self._by_day

    def __repr__(self) -> str:
        return f"DecisionLog({len(self)} days)"


@dataclass
class RunLog:
    """What happened, beyond the ledger: decisions and orders per rebalance day."""

    decisions: DecisionLog = field(default_factory=DecisionLog)
    orders: list[Order] = field(default_factory=list)
    retrains: list[date] = field(default_factory=list)
    settlements: list = field(default_factory=list)  # positions closed when a symbol delisted
    book_events: list = field(default_factory=list)  # splits, dividends, delistings applied


class Runner:
    def __init__(
        self,
        *,
        run_id: str,
        store: Store,
        clock: Iterable[Tick],
        broker: Broker,
        feed: BarFeed,
        decider: Decider,
        portfolio: Portfolio,
        min_trade_weight: float = 0.0,
        fractional: bool = False,
        on_tick: Callable[[Tick], None] | None = None,
        dividend_tax: float = 0.0,
        stale_after: int | None = None,
    ):
        self.run_id = run_id
        self.store = store
        self.clock = clock
        self.broker = broker
        self.feed = feed
        self.decider = decider
        self.portfolio = portfolio
        self.min_trade_weight = min_trade_weight
        self.fractional = fractional
        self.on_tick = on_tick
        self.log = RunLog()
        self.actions = CorporateActions(store, dividend_tax, stale_after)
        #: What a decider that does not read the book's weights is handed (built once).
        self._no_weights = pd.Series(dtype=np.dtype(np.float64))

    def step(self, tick: Tick) -> None:
        """One day: the whole event loop body."""
        day = tick.day
        view = self.store.view(day)  # "now": every read below is bounded at this day
        bars = self.feed.advance(day)
        closes = bars.closes()  # one per day: it keeps its last look-up of the held symbols
        if self.actions:  # splits, dividends and delistings first: orders are restated for them
            events = self.actions.apply(
                day, self.portfolio, self.broker, self.run_id, view, traded=closes
            )
            for event in events:
                (self.log.book_events if isinstance(event, BookEvent) else self.log.settlements
                 ).append(event)  # fmt: skip
        self.broker.execute(day, bars, self.portfolio)
        self._settle_delisted(view, closes)
        self.portfolio.mark(day, closes)
        if tick.has(EventType.RETRAIN):
            self.decider.retrain(view)
            self.log.retrains.append(day)
        if tick.has(EventType.REBALANCE):
            weights = self.decider.plan(view, self._current_weights())
            self.log.decisions[day] = weights
            w_min = self.min_trade_weight  # with none, the book's equity is not needed here
            min_value = w_min * self.portfolio.equity() if w_min else 0.0
            orders = orders_for_targets(
                self.run_id, day, weights, self.portfolio, closes, min_value, self.fractional
            )
            self.broker.submit(orders)
            self.log.orders.extend(orders)

    def _current_weights(self) -> pd.Series:
        """The book's weights for the decider; when it says it does not read them, an empty
        Series (the same one each time: building even an empty one costs tens of microseconds)."""
        if getattr(self.decider, "needs_weights", True):
            return self.portfolio.weights()
        return self._no_weights

    def retrain_as_of(self, day: date) -> None:
        """Refit as of an earlier retrain day (live mode after a restart), on that day's view."""
        self.decider.retrain(self.store.view(day))

    def _settle_delisted(self, view: Store, closes: Closes) -> None:
        """A held symbol that left the universe and has no bar is closed at its last price."""
        held = without_bar(list(self.portfolio.positions), closes)
        if not held:
            return
        day = view.day
        investable = set(view.market.universe_symbols(day))
        settle = getattr(self.broker, "settle", None)
        for sym in held:
            if sym not in investable and settle is not None:
                fill = settle(
                    day, sym, self.portfolio, f"{self.run_id}:{day.isoformat()}:{sym}:delisted"
                )
                if fill is not None:
                    self.log.settlements.append(fill)

    def run(self) -> RunLog:
        """Every tick in order. The objects alive before the loop (the preloaded bars, caches,
        the ML stack: ~400k in W1) are frozen out of the garbage collector's scans meanwhile:
        a full collection walking them cost ~220 ms, about once in three W1 runs, for objects
        that live as long as the run. Objects made in the loop are collected as usual."""
        gc.freeze()
        try:
            for tick in self.clock:
                self.step(tick)
                if self.on_tick:
                    self.on_tick(tick)
        finally:
            gc.unfreeze()
        return self.log
