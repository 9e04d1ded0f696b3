"""Corporate actions and delistings applied to the book at the start of each simulated day.

The tape (and so the broker's fills and the book's marks) is in prices as traded, so a split must
change the share count and a dividend must be paid into cash, or a 2:1 split would halve the
equity and every dividend would be lost. On each day, before the broker fills yesterday's orders:

* a split of r new shares per old one multiplies the shares held (and pending order quantities,
  decided in old shares) by r and divides the last price by r;
* a cash dividend d per share credits ``shares * d * (1 - dividend_tax)`` to cash;
* a held symbol whose listing ended (``listings`` file, ``to`` < day, no later span) is settled
  at its ``cash_out`` price, or its last price, and recorded.

Only actions dated on or before the day are applied (an action on a day without a session takes
effect on the next session), so a later action cannot change anything earlier. A live process
resumes after the account's last processed day (:meth:`CorporateActions.resume_after`), so it
applies exactly the actions the backtest would have applied since then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Container
from dataclasses import dataclass
from datetime import date

from engine.portfolio import Fill, Portfolio
from sentinel.db import Store


@dataclass(frozen=True)
class BookEvent:
    """What an action did to the book: ``kind`` is split, dividend or delisting."""

    day: date
    symbol: str
    kind: str
    shares: float  # shares held before the event
    amount: float  # split ratio, cash credited, or settlement value


class CorporateActions:
    """Splits, dividends and delistings of one store, applied day by day to a portfolio."""

    def __init__(self, store: Store, dividend_tax: float = 0.0, stale_after: int | None = None):
        full = store.view(None).market
        self.actions = full.corporate_actions()  # sorted by symbol, date
        self.listings = full.listings()
        self.dividend_tax = dividend_tax
        self.stale_after = stale_after
        self._by_date = sorted(self.actions, key=lambda a: a[1])
        self._dates = [a[1] for a in self._by_date]
        self._done = 0  # actions before this index are applied
        self._last_day: date | None = None

    def __bool__(self) -> bool:
        return bool(self.actions or self.listings or self.stale_after)

    def resume_after(self, last_day: date | None) -> None:
        """Continue a book last processed on ``last_day``: the next :meth:`apply` catches up on
        every action dated after it (live mode starts a new process per day, and an ex-date on a
        day it never processed must not be lost). None: a new book, nothing to catch up."""
        if last_day is None:
            return
        self._done = bisect_right(self._dates, last_day)
        self._last_day = last_day

    def apply(
        self,
        day: date,
        portfolio: Portfolio,
        broker: object,
        run_id: str,
        view: Store | None = None,
        traded: Container[str] = (),
    ) -> list:
        """Apply the actions dated up to ``day`` not yet applied; returns the book events.

        With ``view`` (bounded at ``day``) and ``stale_after``, a held symbol without a bar in the
        last ``stale_after`` sessions is settled at its last price: its bars stopped. ``traded``
        (the day's bars) spares that look-up for the held symbols with a bar today, which cannot
        be stale: the check then costs nothing on an ordinary day.
        """
        if self._last_day is not None and day < self._last_day:
            raise ValueError(f"corporate actions only move forward: {day} after {self._last_day}")
        if self._last_day is None:  # the book starts on this day: earlier actions are history
            self._done = bisect_right(self._dates, _before(day))
        self._last_day = day
        end = bisect_right(self._dates, day)
        events: list = []
        for symbol, _, split, dividend in self._by_date[self._done : end]:
            held = portfolio.positions.get(symbol, 0.0)
            if split != 1.0:
                portfolio.split(symbol, split)
                _split_pending(broker, symbol, split)
                if held:
                    events.append(BookEvent(day, symbol, "split", held, split))
            if dividend > 0 and held:
                cash = portfolio.pay_dividend(symbol, dividend, self.dividend_tax)
                events.append(BookEvent(day, symbol, "dividend", held * split, cash))
        self._done = end
        if self.listings and portfolio.positions:
            events += self._delist(day, portfolio, run_id)
        if view is None or not self.stale_after or not portfolio.positions:
            return events
        missing = without_bar(list(portfolio.positions), traded)
        if missing:
            stale = view.market.stale_symbols(sorted(missing), day, self.stale_after)
            for symbol in sorted(stale):
                events += self._settle(day, portfolio, run_id, symbol, None)
        return events

    def _delist(self, day: date, portfolio: Portfolio, run_id: str) -> list:
        out: list = []
        for symbol in sorted(portfolio.positions):
            spans = self.listings.get(symbol)
            if not spans or any(a <= day and (b is None or day <= b) for a, b, _ in spans):
                continue
            ended = [s for s in spans if s[1] is not None and s[1] < day]
            if not ended:  # not listed yet: nothing to settle
                continue
            cash_out = max(ended, key=lambda s: s[1])[2]  # type: ignore[arg-type, return-value]
            out += self._settle(day, portfolio, run_id, symbol, cash_out)
        return out

    @staticmethod
    def _settle(
        day: date, portfolio: Portfolio, run_id: str, symbol: str, cash_out: float | None
    ) -> list:
        """Close a position that can no longer trade, at ``cash_out`` or its last price."""
        qty = portfolio.positions.get(symbol, 0.0)
        price = cash_out or portfolio.last_price.get(symbol)
        if qty <= 0 or not price:
            return []
        fill = Fill(f"{run_id}:{day.isoformat()}:{symbol}:delisted", day, symbol, -qty,
                    float(price), 0.0, 0.0)  # fmt: skip
        portfolio.apply(fill)
        return [fill, BookEvent(day, symbol, "delisting", qty, qty * float(price))]


def without_bar(symbols: list[str], closes: Container[str]) -> list[str]:
    """Those of ``symbols`` with no bar in ``closes`` (one numpy gather when it has ``take``)."""
    take = getattr(closes, "take", None)
    if take is None or not symbols:
        return [s for s in symbols if s not in closes]
    have_all = getattr(closes, "have_all", None)
    if have_all is not None and have_all(symbols):  # the usual day: every held symbol traded
        return []
    today = take(symbols)
    if (today == today).all():
        return []
    return [s for s, p in zip(symbols, today.tolist(), strict=True) if p != p]


def _before(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)


def _split_pending(broker: object, symbol: str, ratio: float) -> None:
    """Orders decided before a split are in old shares: restate them in new ones."""
    pending = getattr(broker, "pending", None)
    if not pending:
        return
    broker.pending = [  # type: ignore[attr-defined]
        o._replace(quantity=o.quantity * ratio) if o.symbol == symbol else o for o in pending
    ]


def book_event_metrics(events: list, settlements: list) -> dict[str, float]:
    """Counts and cash of what the actions did to the book (for metrics.json)."""
    dividends = [e.amount for e in events if e.kind == "dividend"]
    return {
        "n_splits_applied": float(sum(e.kind == "split" for e in events)),
        "n_dividends_paid": float(len(dividends)),
        "dividends_received": float(sum(dividends)),
        "n_delisting_settlements": float(len(settlements)),
    }
