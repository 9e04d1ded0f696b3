"""ONE loop for backtest and live: the clock and the broker are injected, nothing else differs.

For each tick: bound the store at the day, let the broker fill yesterday's orders, mark the book,
retrain when due, and on a rebalance day ask the planner for target weights and turn them into
orders for the next session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import pandas as pd

from engine.broker import Broker, orders_for_targets
from engine.clock import EventType, Tick
from engine.feed import BarFeed
from engine.portfolio import Order, Portfolio
from sentinel.db import Store


class Planner(Protocol):
    """What the runner asks of the domain layer (``sentinel.planner`` implements it)."""

    def retrain(self, as_of: date) -> None: ...

    def plan(self, as_of: date, current_weights: pd.Series) -> pd.Series: ...


@dataclass
class RunLog:
    """What happened, beyond the ledger: decisions and orders per rebalance day."""

    decisions: dict[date, pd.Series] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    retrains: list[date] = field(default_factory=list)
    settlements: list = field(default_factory=list)  # positions closed when a symbol delisted


class Runner:
    def __init__(
        self,
        *,
        run_id: str,
        store: Store,
        clock: Iterable[Tick],
        broker: Broker,
        feed: BarFeed,
        planner: Planner,
        portfolio: Portfolio,
        min_trade_weight: float = 0.0,
        fractional: bool = False,
        on_tick: Callable[[Tick], None] | None = None,
    ):
        self.run_id = run_id
        self.store = store
        self.clock = clock
        self.broker = broker
        self.feed = feed
        self.planner = planner
        self.portfolio = portfolio
        self.min_trade_weight = min_trade_weight
        self.fractional = fractional
        self.on_tick = on_tick
        self.log = RunLog()

    def step(self, tick: Tick) -> None:
        """One day: the whole event loop body."""
        day = tick.day
        self.store.set_simulation_date(day)
        bars = self.feed.advance(day)
        self.broker.execute(day, bars, self.portfolio)
        closes = bars.closes()
        self._settle_delisted(day, closes)
        self.portfolio.mark(day, closes)
        if tick.has(EventType.RETRAIN):
            self.planner.retrain(day)
            self.log.retrains.append(day)
        if tick.has(EventType.REBALANCE):
            weights = self.planner.plan(day, self.portfolio.weights())
            self.log.decisions[day] = weights
            min_value = self.min_trade_weight * self.portfolio.equity()
            orders = orders_for_targets(
                self.run_id, day, weights, self.portfolio, closes, min_value, self.fractional
            )
            self.broker.submit(orders)
            self.log.orders.extend(orders)

    def _settle_delisted(self, day, closes) -> None:
        """A held symbol that left the universe and has no bar is closed at its last price."""
        held = [s for s in self.portfolio.positions if s not in closes]
        if not held:
            return
        investable = set(self.store.universe_symbols(day))
        settle = getattr(self.broker, "settle", None)
        for sym in held:
            if sym not in investable and settle is not None:
                fill = settle(
                    day, sym, self.portfolio, f"{self.run_id}:{day.isoformat()}:{sym}:delisted"
                )
                if fill is not None:
                    self.log.settlements.append(fill)

    def run(self) -> RunLog:
        for tick in self.clock:
            self.step(tick)
            if self.on_tick:
                self.on_tick(tick)
        return self.log
