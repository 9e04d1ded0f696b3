"""Live mode: the backtest's runner with a live clock and a paper broker.

Each processed trading day is one :meth:`Runner.step` — the same code a backtest runs — on a
:class:`LiveClock` tick, with a :class:`PaperBroker` whose orders, cash and positions live in the
database. ``sentinel live CONFIG --once`` processes the next due day and exits (for cron);
without ``--once`` it keeps syncing prices and processing days.

Idempotence: an order's id is ``{account}:{day}:{symbol}``. Orders are sent one at a time (each
committed, as to a real broker); the day's fills and the book are committed together after the
rebalance. A crash anywhere in between leaves the day unprocessed: the restart recomputes the same
orders, finds them already sent, and sends nothing twice.

Replay: a LiveClock in replay mode walks past trading days of the store; it makes the same orders
as a backtest of the same config (tested), which is the check that live and backtest agree.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine.broker import SimulatedBroker
from engine.clock import EventType, SimulationClock, Tick
from engine.config import RunConfig
from engine.feed import DayBars
from engine.portfolio import Fill, Order, Portfolio
from engine.session import build_session
from sentinel.data.importer import import_files
from sentinel.db import LiveAccount, LiveOrder, Store
from sentinel.errors import SentinelError


class LiveFeed:
    """Bars of one day read from the store (live data arrives day by day)."""

    def __init__(self, store: Store):
        self.store = store

    def advance(self, day: date) -> DayBars:
        panel = self.store.market.get_price_panel(start_date=day, end_date=day)
        return DayBars.from_frame(panel.set_index("symbol")[["open", "close"]])


class PaperBroker(SimulatedBroker):
    """Fills like the simulated broker; orders and fills are persisted in the database."""

    def __init__(self, cfg: RunConfig, store: Store, account: str, day: date):
        super().__init__(cfg.costs)
        self.store = store
        self.account = account
        # Orders decided before ``day`` fill today; any sent on ``day`` itself by an attempt that
        # crashed are re-derived by the rebalance (same ids) and fill tomorrow.
        self.pending = [
            Order(o.order_id, o.symbol, o.quantity, o.decided_on)
            for o in store.records.live_orders(account, status="pending")
            if o.decided_on < day
        ]
        self.fills: list[Fill] = []
        self.sent: list[str] = []

    def submit(self, orders: list[Order]) -> None:
        for o in orders:
            row = LiveOrder(order_id=o.order_id, account=self.account, symbol=o.symbol,
                            quantity=o.quantity, decided_on=o.decided_on)  # fmt: skip
            if self.store.records.send_live_order(row):
                self.sent.append(o.order_id)

    def execute(self, day: date, bars: DayBars, portfolio: Portfolio) -> list[Fill]:
        fills = super().execute(day, bars, portfolio)
        self.fills.extend(fills)
        return fills

    def settle(self, day: date, symbol: str, portfolio: Portfolio, order_id: str) -> Fill | None:
        """A delisted holding's settlement is recorded like any order, then filled."""
        qty = portfolio.positions.get(symbol, 0.0)
        fill = super().settle(day, symbol, portfolio, order_id)
        if fill is not None:
            self.store.records.send_live_order(LiveOrder(
                order_id=order_id, account=self.account, symbol=symbol, quantity=-qty,
                decided_on=day, note="delisted: settled at the last price",
            ))  # fmt: skip
            self.fills.append(fill)
        return fill


class LiveClock:
    """The days live mode must process: trading days with data after the account's last day.

    In replay mode the days come from the store between the config's start and end; live, up to
    today. Events come from the same schedule as the backtest, computed over the known days.
    """

    def __init__(self, cfg: RunConfig, store: Store, *, replay: bool = False,
                 today: date | None = None):  # fmt: skip
        self.cfg = cfg
        self.store = store
        self.replay = replay
        self.today = today or datetime.now(UTC).date()

    def known_days(self) -> list[date]:
        end = self.cfg.end if self.replay else self.today
        return [
            d for d in self.store.view(None).market.trading_days() if self.cfg.start <= d <= end
        ]

    def schedule(self, days: list[date]) -> dict[date, Tick]:
        retrain = self.cfg.ml.retrain if self.cfg.ml.walk_forward else None
        return {t.day: t for t in SimulationClock(days, self.cfg.rebalance, retrain)}

    def due(self, last_day: date | None) -> list[Tick]:
        days = self.known_days()
        ticks = self.schedule(days)
        return [ticks[d] for d in days if last_day is None or d > last_day]


@dataclass
class StepReport:
    day: date
    rebalanced: bool
    orders_sent: list[str] = field(default_factory=list)
    fills: int = 0
    equity: float = 0.0


class LiveRunner:
    """Processes live days for one paper account, one :meth:`Runner.step` per day."""

    def __init__(
        self,
        cfg: RunConfig,
        store: Store,
        *,
        replay: bool = False,
        today: date | None = None,
        status: Callable[[str], None] = lambda m: None,
    ):
        self.session = build_session(cfg, store, simulate=False, status=status)
        self.cfg = cfg = self.session.cfg
        self.store = store
        self.account = cfg.live.account or cfg.name
        self.clock = LiveClock(cfg, store, replay=replay, today=today)
        self.warnings = self.session.warnings
        self._trained_for: date | None = None

    def _load(self) -> LiveAccount:
        acct = self.store.records.get_live_account(self.account)
        if acct is None:
            acct = LiveAccount(
                account=self.account, cash=self.cfg.initial_cash, positions={}, last_price={},
                last_day=None, updated_at=datetime.now(UTC),
            )  # fmt: skip
        return acct

    def _refit_day(self, tick: Tick) -> date | None:
        """After a restart, walk-forward models are refitted as of the last retrain day."""
        if not self.cfg.ml.walk_forward or tick.has(EventType.RETRAIN):
            return None
        if self.session.planner.predictor is not None:
            return None
        past = [t.day for t in self.clock.due(None) if t.day < tick.day
                and t.has(EventType.RETRAIN)]  # fmt: skip
        if past and self._trained_for != past[-1]:
            self._trained_for = past[-1]
            return past[-1]
        return None

    def step(self, tick: Tick) -> StepReport:
        """Process one day: fills at its open, mark, retrain/rebalance when due, commit."""
        acct = self._load()
        if acct.last_day is not None and tick.day <= acct.last_day:
            return StepReport(tick.day, False)
        refit_as_of = self._refit_day(tick)
        portfolio = Portfolio(cash=acct.cash, positions=dict(acct.positions),
                              last_price=dict(acct.last_price))  # fmt: skip
        broker = PaperBroker(self.cfg, self.store, self.account, tick.day)
        runner = self.session.runner(broker=broker, portfolio=portfolio, clock=[tick],
                                     feed=LiveFeed(self.store), run_id=self.account)  # fmt: skip
        if refit_as_of is not None:
            runner.retrain_as_of(refit_as_of)
        runner.step(tick)
        recs = []
        if tick.day in runner.log.decisions:
            weights = runner.log.decisions[tick.day]
            scores = self.session.decider.scores_log[-1]
            for sym, w in weights.items():
                row = scores.loc[sym] if sym in scores.index else None
                recs.append({
                    "account": self.account, "date": tick.day, "symbol": sym,
                    "target_weight": float(w),
                    **{k: _f(row[k]) if row is not None else None for k in (
                        "blended_score", "wavelet_score", "ml_score", "predicted_return")},
                })  # fmt: skip
        fills = [
            {"order_id": f.order_id, "day": f.day, "price": f.price, "quantity": f.quantity,
             "commission": f.commission, "slippage": f.slippage}
            for f in broker.fills
        ]  # fmt: skip
        cancelled = [(o.order_id, why) for _, o, why in broker.cancelled]
        acct.cash = portfolio.cash
        acct.positions = dict(portfolio.positions)
        acct.last_price = dict(portfolio.last_price)
        acct.last_day = tick.day
        acct.updated_at = datetime.now(UTC)
        self.store.records.commit_live_day(acct, fills, cancelled, recs)
        return StepReport(tick.day, tick.has(EventType.REBALANCE), broker.sent, len(fills),
                          portfolio.equity())  # fmt: skip

    def run_due(self, once: bool = False) -> list[StepReport]:
        """Process the due days (just the next one with ``once``)."""
        reports = []
        for tick in self.clock.due(self._load().last_day):
            reports.append(self.step(tick))
            if once:
                break
        return reports


def _f(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def sync_prices(cfg: RunConfig, store: Store) -> str:
    """Bring new bars into the store from the configured provider; returns a summary line."""
    if cfg.live.provider == "yfinance":
        return _sync_yfinance(cfg, store)
    if not cfg.live.drop_dir:
        return "no live.drop_dir configured: using the bars already in the store"
    folder = Path(cfg.live.drop_dir)
    if not folder.is_dir():
        raise SentinelError(f"live.drop_dir: {folder} is not a folder")

    files = sorted(p for p in folder.iterdir()
                   if p.name.endswith((".csv", ".csv.gz", ".parquet")))  # fmt: skip
    if not files:
        return f"no files in {folder}"
    reports = import_files(store, files, skip_bad=True)
    rows = sum(r.rows_valid for r in reports)
    bad = sum(len(r.bad) for r in reports)
    return f"synced {len(files)} file(s) from {folder}: {rows:,} rows ({bad} bad rows skipped)"


def _sync_yfinance(cfg: RunConfig, store: Store) -> str:
    try:
        import yfinance  # noqa: F401  # lazy: an optional extra
    except ImportError:
        raise SentinelError(
            "live.provider 'yfinance' needs the optional extra: pip install 'sentinel[yfinance]'"
        ) from None
    try:
        socket.create_connection(("query1.finance.yahoo.com", 443), timeout=5).close()
    except OSError as exc:
        raise SentinelError(f"yfinance provider: offline or unreachable ({exc})") from None
    raise SentinelError("yfinance provider: download not configured on this installation")
