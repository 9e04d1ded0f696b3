"""The ledger: positions, cash, trades and the daily equity curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd


@dataclass(frozen=True)
class Order:
    """An instruction decided at one day's close; the id derives from run, date and symbol, so
    replaying a decision can never create a second order."""

    order_id: str
    symbol: str
    quantity: float  # signed: > 0 buy, < 0 sell
    decided_on: date


@dataclass(frozen=True)
class Fill:
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
    weight_rows: dict[date, dict[str, float]] = field(default_factory=dict)

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
            return pd.Series(dtype="float64")
        return pd.Series({s: q * self.last_price[s] / eq for s, q in self.positions.items()})

    def mark(self, day: date, closes: dict[str, float]) -> float:
        """Value the book at ``day``'s closes (a symbol with no bar keeps its last price)."""
        for s in self.positions:
            if s in closes:
                self.last_price[s] = closes[s]
        eq = self.equity()
        self.equity_rows.append((day, eq, self.cash))
        self.weight_rows[day] = (
            {s: q * self.last_price[s] / eq for s, q in self.positions.items()} if eq > 0 else {}
        )
        return eq

    # -- records -----------------------------------------------------------------------------
    def equity_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.equity_rows, columns=["date", "equity", "cash"])
        df["date"] = pd.to_datetime(df["date"])
        return df.set_index("date")

    def weights_frame(self) -> pd.DataFrame:
        df = pd.DataFrame.from_dict(self.weight_rows, orient="index").fillna(0.0)
        df.index = pd.to_datetime(df.index)
        df.index.name = "date"
        return df.sort_index(axis=1)

    def trades_frame(self) -> pd.DataFrame:
        rows = [
            {
                "date": f.day, "symbol": f.symbol, "side": "buy" if f.quantity > 0 else "sell",
                "quantity": abs(f.quantity), "price": f.price, "value": f.value,
                "commission": f.commission, "slippage": f.slippage, "order_id": f.order_id,
            }
            for f in self.fills
        ]  # fmt: skip
        cols = ["date", "symbol", "side", "quantity", "price", "value", "commission", "slippage",
                "order_id"]  # fmt: skip
        df = pd.DataFrame(rows, columns=cols)
        df["date"] = pd.to_datetime(df["date"])
        return df
