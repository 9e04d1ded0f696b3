"""The ledger: positions, cash, trades and the daily equity curve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import chain
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd

#: A numpy dtype object: pandas parses a type or a name slowly (under catch_warnings).
_OBJECT = np.dtype(object)


class PriceRow(Protocol):
    """A day's closes that can be read for many symbols at once (``engine.feed.Closes``)."""

    def take(self, symbols: Sequence[str]) -> np.ndarray: ...


class Order(NamedTuple):
    """An instruction decided at one day's close; the id derives from run, date and symbol, so
    replaying a decision can never create a second order. Immutable (a named tuple: a run makes
    thousands, and a frozen dataclass costs several times more to build)."""

    order_id: str
    symbol: str
    quantity: float  # signed: > 0 buy, < 0 sell
    decided_on: date


class Fill(NamedTuple):
    """One execution (immutable, a named tuple like :class:`Order`)."""

    order_id: str
    day: date
    symbol: str
    quantity: float  # signed
    price: float  # after slippage
    commission: float
    slippage: float  # cost of slippage in currency

    @property
    def value(self) -> float:
        return abs(self.quantity) * self.price


@dataclass
class Portfolio:
    """Long-only book in one currency. ``mark`` values it at a day's closes."""

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    last_price: dict[str, float] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    equity_rows: list[tuple[date, float, float]] = field(default_factory=list)
    #: Per marked day, the held symbols and their weights (parallel tuples: no dict per day).
    _weight_log: dict[date, tuple[tuple[str, ...], tuple[float, ...]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def weight_rows(self) -> dict[date, dict[str, float]]:
        """Per marked day, each held symbol's weight at that day's close."""
        return {d: dict(zip(s, w, strict=True)) for d, (s, w) in self._weight_log.items()}

    def apply(self, fill: Fill) -> None:
        self.cash -= fill.quantity * fill.price + fill.commission
        qty = self.positions.get(fill.symbol, 0.0) + fill.quantity
        if abs(qty) < 1e-9:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = qty
        self.last_price[fill.symbol] = fill.price
        self.fills.append(fill)

    def split(self, symbol: str, ratio: float) -> None:
        """A split of ``ratio`` new shares per old one: more shares at a lower price, same value."""
        if symbol in self.positions:
            self.positions[symbol] *= ratio
        if symbol in self.last_price:
            self.last_price[symbol] /= ratio

    def pay_dividend(self, symbol: str, per_share: float, tax_rate: float = 0.0) -> float:
        """Credit a cash dividend on the shares held (after ``tax_rate``); returns the amount."""
        amount = self.positions.get(symbol, 0.0) * per_share * (1.0 - tax_rate)
        self.cash += amount
        return amount

    def market_value(self) -> float:
        return sum(q * self.last_price[s] for s, q in self.positions.items())

    def equity(self) -> float:
        return self.cash + self.market_value()

    def weights(self) -> pd.Series:
        eq = self.equity()
        if eq <= 0 or not self.positions:
            return pd.Series(dtype=np.dtype(np.float64))
        prices = self.last_price
        values = [q * prices[s] / eq for s, q in self.positions.items()]
        index = pd.Index(np.array(list(self.positions), dtype=object), dtype=_OBJECT, copy=False)
        return pd.Series(np.array(values), index=index, copy=False)

    def mark(self, day: date, closes: Mapping[str, float] | PriceRow) -> float:
        """Value the book at ``day``'s closes (a symbol with no bar keeps its last price).

        ``closes`` with a ``take`` (the feed's day) is read for all held symbols in one numpy
        gather; the sums stay in the positions' order, so the figures equal the per-symbol ones.
        """
        held = list(self.positions)
        prices = self.last_price
        take = getattr(closes, "take", None)
        if take is not None and held:
            today = take(held)
            have_all = getattr(closes, "have_all", None)  # known from the gather, when offered
            if have_all(held) if have_all is not None else not np.isnan(today).any():
                prices.update(zip(held, today.tolist(), strict=True))
            else:
                have = today == today  # NaN where a symbol has no bar
                prices.update((s, p) for s, p, h in zip(held, today.tolist(), have.tolist(),
                                                        strict=True) if h)  # fmt: skip
        elif held:
            for s in held:
                if s in closes:
                    prices[s] = closes[s]  # type: ignore[index]
        values = [q * prices[s] for s, q in self.positions.items()]
        eq = self.cash + sum(values)
        self.equity_rows.append((day, eq, self.cash))
        self._weight_log[day] = (
            (tuple(held), tuple([v / eq for v in values])) if eq > 0 else ((), ())
        )
        return eq

    # -- records -----------------------------------------------------------------------------
    def equity_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.equity_rows, columns=["date", "equity", "cash"])
        df["date"] = pd.to_datetime(df["date"])
        return df.set_index("date")

    def weights_frame(self) -> pd.DataFrame:
        """date x symbol weights at each close (0 where not held), symbols by name."""
        log = self._weight_log
        helds = [held for held, _ in log.values()]
        books = dict.fromkeys(helds)  # the distinct books: one changes only when a fill does
        names = sorted({s for held in books for s in held})
        col = {s: j for j, s in enumerate(names)}
        for held in books:
            books[held] = [col[s] for s in held]
        total = sum(map(len, helds))
        # column-major: the layout pandas' own copy of a row-major grid has, built in place
        grid = np.zeros((len(log), len(names)), order="F")
        rows = np.repeat(np.arange(len(log)), [len(held) for held in helds])  # one scatter
        cols = np.fromiter(chain.from_iterable(map(books.__getitem__, helds)), np.int64, total)
        grid[rows, cols] = np.fromiter(chain.from_iterable(ws for _, ws in log.values()),
                                       np.float64, total)  # fmt: skip
        index = pd.DatetimeIndex(pd.to_datetime(list(log)), name="date")
        return pd.DataFrame(grid, index=index, columns=pd.Index(names) if names else None,
                            copy=False)  # fmt: skip

    def trades_frame(self) -> pd.DataFrame:
        """One row per fill, built column-wise (a run has thousands of fills)."""
        fills = self.fills
        if not fills:
            cols = ["date", "symbol", "side", "quantity", "price", "value", "commission",
                    "slippage", "order_id"]  # fmt: skip
            df = pd.DataFrame(columns=cols)
            df["date"] = pd.to_datetime(df["date"])
            return df
        order_id, day, symbol, quantity, price_, commission, slippage = zip(*fills, strict=True)
        qty = np.array(quantity, dtype="float64")
        price = np.array(price_, dtype="float64")
        size = np.abs(qty)
        return pd.DataFrame({
            "date": pd.to_datetime(pd.Series(day, dtype=object)),
            "symbol": list(symbol),
            "side": ["buy" if q > 0 else "sell" for q in quantity],
            "quantity": size, "price": price, "value": size * price,
            "commission": np.array(commission, dtype="float64"),
            "slippage": np.array(slippage, dtype="float64"),
            "order_id": list(order_id),
        })  # fmt: skip
