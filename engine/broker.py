"""Brokers fill orders. The simulated one fills at the next day's open (or close) with costs;
the paper and real brokers of live mode implement the same interface."""

from __future__ import annotations

import math
from datetime import date
from typing import Protocol

import pandas as pd

from engine.config import CostsConfig
from engine.costs import NO_LIQUIDITY, CostModel, Liquidity
from engine.feed import DayBars
from engine.portfolio import Fill, Order, Portfolio
from strategies.base import Targets


class Broker(Protocol):
    """What the runner needs from a broker, in backtests and live."""

    def submit(self, orders: list[Order]) -> None: ...

    def execute(self, day: date, bars: DayBars, portfolio: Portfolio) -> list[Fill]: ...


#: Why an order the participation cap cut to nothing is cancelled (a carried rest is a new order).
CAPPED = "participation cap: no volume left for it today"


class SimulatedBroker:
    """Fills pending orders at ``day``'s open (``next_open``) or close (``next_close``).

    Costs: commission in bps of traded value with a minimum per order; slippage (fixed bps, or
    growing with size and volatility: :mod:`engine.costs`) moves the price against the order.
    With a participation cap an order fills at most that share of the day's volume; the rest is
    recorded in ``capped`` and cancelled or carried to the next day. Long-only, no overdraft:
    sells fill first, then buys are scaled down (whole shares) so cash never goes negative. An
    order whose symbol has no bar that day is cancelled and recorded in ``cancelled``.
    """

    def __init__(self, costs: CostsConfig):
        self.costs = costs
        self.model = CostModel(costs)
        self.pending: list[Order] = []
        self.cancelled: list[tuple[date, Order, str]] = []
        #: (day, order, shares filled, shares over the cap) of every order the cap cut
        self.capped: list[tuple[date, Order, float, float]] = []

    def submit(self, orders: list[Order]) -> None:
        self.pending.extend(orders)

    def _commission(self, value: float) -> float:
        return max(self.costs.min_commission, value * self.costs.commission_bps / 1e4)

    def _affordable(self, qty: float, price: float, cash: float) -> float:
        """The largest quantity up to ``qty`` whose cost and commission fit in ``cash``."""
        if not self.costs.fractional:
            q = math.floor(qty)
            while q > 0 and q * price + self._commission(q * price) > cash:
                q -= 1
            return float(q)
        if qty * price + self._commission(qty * price) <= cash:
            return qty
        rate = self.costs.commission_bps / 1e4
        q = cash / (price * (1 + rate))
        if q * price * rate < self.costs.min_commission:  # the minimum applies instead
            q = (cash - self.costs.min_commission) / price
        return max(0.0, min(qty, q))

    def settle(self, day: date, symbol: str, portfolio: Portfolio, order_id: str) -> Fill | None:
        """Close a position that can no longer trade (delisted) at its last known price."""
        qty = portfolio.positions.get(symbol, 0.0)
        price = portfolio.last_price.get(symbol)
        if qty <= 0 or not price:
            return None
        commission = min(self._commission(qty * price), qty * price)
        fill = Fill(order_id, day, symbol, -qty, price, commission, 0.0)
        portfolio.apply(fill)
        return fill

    def _liquidity(self, bars: DayBars, symbol: str) -> Liquidity:
        return bars.liquidity(symbol) if self.model.needs_liquidity else NO_LIQUIDITY

    def _cap(self, day: date, o: Order, qty: float, liq: Liquidity) -> float:
        """``qty`` cut to the participation cap; the cut part is recorded and, with
        ``on_cap: carry``, submitted again for the next day."""
        if self.costs.participation_cap is None:
            return qty
        allowed = self.model.cap(qty, liq)
        over = qty - allowed
        if over > 1e-9:
            self.capped.append((day, o, allowed, over))
            if self.costs.on_cap == "carry":
                root = o.order_id.split(":carry:")[0]
                sign = 1.0 if o.quantity > 0 else -1.0
                self.submit([Order(f"{root}:carry:{day.isoformat()}", o.symbol, sign * over, day)])
        return allowed

    def execute(self, day: date, bars: DayBars, portfolio: Portfolio) -> list[Fill]:
        if not self.pending:
            return []
        field = "open" if self.costs.fill == "next_open" else "close"
        orders, self.pending = self.pending, []
        fills: list[Fill] = []
        sells = [o for o in orders if o.quantity < 0]
        buys = [o for o in orders if o.quantity > 0]
        price_of = bars.price
        # fixed costs and no cap (the usual run): no liquidity look-ups, one slippage rate
        plain = not self.model.needs_liquidity and self.costs.model != "sqrt_impact"
        fixed = self.model.slippage(0.0, NO_LIQUIDITY) if plain else 0.0
        positions = portfolio.positions
        bps, floor = self.costs.commission_bps, self.costs.min_commission  # _commission, inline
        for o in sells:
            px = price_of(o.symbol, field)
            qty = min(-o.quantity, positions.get(o.symbol, 0.0))  # long-only: never oversell
            if px is None or qty <= 0:
                self.cancelled.append((day, o, "no bar" if px is None else "nothing held"))
                continue
            if plain:
                slip = fixed
            else:
                liq = self._liquidity(bars, o.symbol)
                qty = self._cap(day, o, qty, liq)
                if qty <= 0:
                    self.cancelled.append((day, o, CAPPED))
                    continue
                slip = self.model.slippage(qty, liq)
            price = px * (1 - slip)
            commission = max(floor, qty * price * bps / 1e4)
            if portfolio.cash + qty * price - commission < 0:  # dust: costs more than it brings
                self.cancelled.append((day, o, "commission exceeds proceeds"))
                continue
            fill = Fill(o.order_id, day, o.symbol, -qty, price, commission, qty * px * slip)
            portfolio.apply(fill)
            fills.append(fill)
        priced = []
        for o in buys:
            px = price_of(o.symbol, field)
            if px is None:
                self.cancelled.append((day, o, "no bar"))
                continue
            if plain:
                priced.append((o, o.quantity, px * (1 + fixed), px, fixed))
                continue
            liq = self._liquidity(bars, o.symbol)
            want = self._cap(day, o, o.quantity, liq)
            if want <= 0:
                self.cancelled.append((day, o, CAPPED))
                continue
            slip = self.model.slippage(want, liq)  # at the capped size, before any cash scaling
            priced.append((o, want, px * (1 + slip), px, slip))
        need = sum(v + max(floor, v * bps / 1e4) for v in [q * p for _, q, p, _, _ in priced])
        scale = 1.0 if need <= portfolio.cash or need <= 0 else max(portfolio.cash, 0.0) / need
        fractional = self.costs.fractional
        for o, want, price, px, slip in priced:
            qty = want * scale
            value = qty * price
            commission = max(floor, value * bps / 1e4)
            if not (fractional and value + commission <= portfolio.cash):  # else it all fits
                qty = self._affordable(qty, price, portfolio.cash)
                commission = self._commission(qty * price)
            if qty <= 0:
                self.cancelled.append((day, o, "insufficient cash"))
                continue
            fill = Fill(o.order_id, day, o.symbol, float(qty), price, commission,
                        qty * px * slip)  # fmt: skip
            portfolio.apply(fill)
            fills.append(fill)
        return fills


def orders_for_targets(
    run_id: str,
    day: date,
    weights: pd.Series | Targets,
    portfolio: Portfolio,
    prices: dict[str, float],
    min_trade_value: float = 0.0,
    fractional: bool = False,
) -> list[Order]:
    """Orders moving the book to ``weights`` of today's equity, in whole shares at ``prices``.

    ``weights``: a Series by symbol, or a strategy's :class:`Targets` arrays (read as they are:
    no Series is built). A held symbol absent from ``weights`` is sold entirely. Order ids are
    ``{run_id}:{day}:{symbol}``: deterministic, so a replayed decision is recognised.
    """
    if isinstance(weights, Targets):
        names, ws = list(weights.symbols), weights.weights.tolist()
    else:
        names, ws = [str(s) for s in weights.index.tolist()], weights.tolist()
    equity = portfolio.equity()
    take = getattr(prices, "take", None)
    # one gather of the day's closes when the feed offers it (NaN: no bar, like None)
    pxs = take(names).tolist() if take is not None and names else [prices.get(s) for s in names]
    targets: dict[str, float] = {}
    for sym, w, px in zip(names, ws, pxs, strict=True):
        if px and px > 0 and w > 0:
            shares = w * equity / px
            targets[sym] = shares if fractional else math.floor(shares)
    orders = []
    held = portfolio.positions
    small = max(min_trade_value, 0.0)
    prefix = f"{run_id}:{day.isoformat()}:"
    for sym in sorted(targets.keys() | held.keys()):
        delta = targets.get(sym, 0.0) - held.get(sym, 0.0)
        if abs(delta) < 1e-9:
            continue
        if small > 0 and targets.get(sym):  # with no minimum no trade is too small
            px = prices.get(sym) or portfolio.last_price.get(sym, 0.0)
            if abs(delta) * px < small:
                continue
        orders.append(Order(prefix + sym, sym, float(delta), day))
    return orders
