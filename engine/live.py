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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pandas as pd

from engine.broker import SimulatedBroker
from engine.calendar import sessions, split_days
from engine.clock import EventType, SimulationClock, Tick
from engine.config import RunConfig
from engine.costs import liquidity_arrays
from engine.feed import DayBars
from engine.portfolio import Fill, Order, Portfolio
from engine.session import build_session
from sentinel.data.importer import import_files
from sentinel.db import LiveAccount, LiveOrder, Store
from sentinel.errors import SentinelError


class LiveFeed:
    """Bars of one day read from the store (live data arrives day by day); with the volume, ADV
    and volatility of the cost model over the ``liquidity_days`` store days before it, computed
    as the backtest's :class:`engine.feed.BarFeed` does."""

    def __init__(self, store: Store, liquidity_days: int | None = None):
        self.store = store
        self.liquidity_days = liquidity_days

    def advance(self, day: date) -> DayBars:
        market = self.store.market
        panel = market.get_price_panel(start_date=day, end_date=day)
        bars = DayBars.from_frame(panel.set_index("symbol")[["open", "close"]])
        n = self.liquidity_days
        if not n:
            return bars
        before = [d for d in market.trading_days(end=day) if d < day][-(n + 1) :]
        symbols = [str(s) for s in panel["symbol"]]
        past = (
            market.get_price_panel(symbols, start_date=before[0], end_date=before[-1])
            if before
            else panel.iloc[:0]
        )
        wide = {
            f: past.pivot(index="date", columns="symbol", values=f)
            .reindex(index=pd.DatetimeIndex(before), columns=symbols)
            .to_numpy("float64")
            for f in ("volume", "close")
        }
        bars.volume = panel["volume"].to_numpy("float64")
        bars.adv, bars.sigma = liquidity_arrays(wide["volume"][-n:], wide["close"])
        return bars


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
    """The days live mode must process: sessions with data after the account's last day.

    In replay mode the days come from the store between the config's start and end; live, up to
    today. Events come from the backtest's schedule: the exchange calendar's rebalance sessions
    from the config's start (:func:`engine.clock.scheduled_rebalances`), known in advance, so a
    daily ``--once`` job rebalances on the backtest's days and only marks the book on the others.
    """

    def __init__(self, cfg: RunConfig, store: Store, *, replay: bool = False,
                 today: date | None = None):  # fmt: skip
        self.cfg = cfg
        self.store = store
        self.replay = replay
        self.today = today or datetime.now(UTC).date()

    def known_days(self) -> list[date]:
        end = self.cfg.end if self.replay else self.today
        days = [
            d for d in self.store.view(None).market.trading_days() if self.cfg.start <= d <= end
        ]
        return split_days(self.cfg.calendar, days)[0]

    def schedule(self, days: list[date]) -> dict[date, Tick]:
        retrain = self.cfg.ml.retrain if self.cfg.ml.walk_forward else None
        clock = SimulationClock(days, self.cfg.rebalance, retrain, calendar=self.cfg.calendar,
                                start=self.cfg.start)  # fmt: skip
        return {t.day: t for t in clock}

    def gap_warning(self) -> str | None:
        """One line when calendar sessions between the config's start and the newest day with
        bars have no bar at all (data gaps: such a day is never processed), else None."""
        days = self.known_days()
        if not days:
            return None
        have = set(days)
        missing = [d for d in sessions(self.cfg.calendar, self.cfg.start, days[-1])
                   if d not in have]  # fmt: skip
        if not missing:
            return None
        return (
            f"data gaps: {len(missing)} {self.cfg.calendar} session(s) without any bar "
            f"between {self.cfg.start} and {days[-1]} (first {missing[0]}): not processed"
        )

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
        feed = LiveFeed(self.store, self.session.liquidity_days)
        runner = self.session.runner(broker=broker, portfolio=portfolio, clock=[tick],
                                     feed=feed, run_id=self.account)  # fmt: skip
        runner.actions.resume_after(acct.last_day)  # actions of the days since, as the backtest
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

    def run_due(
        self,
        once: bool = False,
        on_step: Callable[[StepReport, int, int], None] | None = None,
    ) -> list[StepReport]:
        """Process the due days (just the next one with ``once``); ``on_step(report, i, n)``
        after each (progress)."""
        reports = []
        due = self.clock.due(self._load().last_day)
        for i, tick in enumerate(due[:1] if once else due, start=1):
            reports.append(self.step(tick))
            if on_step:
                on_step(reports[-1], i, 1 if once else len(due))
        return reports


def replay_parity(cfg: RunConfig, store: Store, account: str) -> str:
    """One line comparing a replayed paper account with a backtest of the same config on the
    same store: orders, fills (day, quantity, price) and final equity equal, or the differences.

    Order ids are compared without their run prefix (the account vs the backtest's run id).
    """
    from engine.backtest import run_backtest  # lazy: metrics pull vectorbt

    bt = run_backtest(cfg, store=store, save=False, write_report=False)
    live = store.records.live_orders(account)
    acct = store.records.get_live_account(account)

    def key(order_id: str) -> str:
        return order_id.split(":", 1)[1]

    live_ids = {key(o.order_id) for o in live}
    bt_ids = {key(o.order_id) for o in bt.log.orders} | {key(i) for i in bt.trades["order_id"]}
    live_fills = {key(o.order_id): (o.fill_day, o.quantity, o.fill_price)
                  for o in live if o.status == "filled"}  # fmt: skip
    bt_fills = {
        key(t.order_id): (t.date.date(), t.quantity if t.side == "buy" else -t.quantity, t.price)
        for t in bt.trades.itertuples()
    }
    bad_fills = sorted(
        k for k in live_fills.keys() & bt_fills.keys()
        if live_fills[k][0] != bt_fills[k][0]
        or not all(abs(a - b) <= 1e-9 * max(1.0, abs(b))
                   for a, b in zip(live_fills[k][1:], bt_fills[k][1:], strict=True))
    )  # fmt: skip
    live_eq = (
        0.0
        if acct is None
        else acct.cash + sum(q * acct.last_price.get(s, 0.0) for s, q in acct.positions.items())
    )
    bt_eq = float(bt.equity["equity"].iloc[-1])
    diffs = []
    sides = (("only live", live_ids - bt_ids), ("only in the backtest", bt_ids - live_ids))
    for label, only in sides:
        if only:
            diffs.append(f"{len(only)} order(s) {label} (first {min(only)})")
    missing = (live_fills.keys() ^ bt_fills.keys()) - (live_ids ^ bt_ids)
    if missing:
        diffs.append(f"{len(missing)} order(s) filled on one side only (first {min(missing)})")
    if bad_fills:
        diffs.append(f"{len(bad_fills)} fill(s) differ in day, quantity or price "
                     f"(first {bad_fills[0]})")  # fmt: skip
    if abs(live_eq - bt_eq) > 1e-6 * max(1.0, abs(bt_eq)):
        diffs.append(f"final equity {live_eq:,.2f} live vs {bt_eq:,.2f}")
    head = (f"parity with the backtest: {len(live_ids):,} orders, {len(live_fills):,} fills, "
            f"final equity {live_eq:,.2f}")  # fmt: skip
    return head + (": equal" if not diffs else ": DIFFERENT: " + "; ".join(diffs))


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


def _sync_yfinance(cfg: RunConfig, store: Store, today: date | None = None) -> str:
    """Download the days after the store's last bar for the universe and the benchmark, and
    import them through the importer (same validation as a user's file)."""
    from sentinel.data import yfinance_source as yf  # lazy: the provider is optional

    market = store.view(None).market
    if cfg.universe.kind == "list":
        symbols = list(cfg.universe.symbols)
    else:
        symbols = [s.symbol for s in market.securities() if s.universe_to is None]
    span = market.price_span()
    start = span[1] + timedelta(days=1) if span else cfg.start
    end = today or datetime.now(UTC).date()
    if start > end:
        return f"yfinance: prices are up to date ({span[1] if span else start})"
    bench = [cfg.benchmark] if cfg.benchmark and cfg.benchmark not in symbols else []
    if not symbols and not bench:
        return "yfinance: no symbols to sync (the store has no securities)"
    bars = yf.fetch_bars(symbols + bench, start, end)
    with TemporaryDirectory() as tmp:
        stock = bars[bars["symbol"].isin(symbols)]
        files = [(yf.write_bars_csv(stock, Path(tmp) / "prices.csv"), "prices")]
        if bench and bars["symbol"].isin(bench).any():
            index = bars[bars["symbol"].isin(bench)]
            files.append((yf.write_bars_csv(index, Path(tmp) / "benchmark.csv"), "benchmark"))
        reports = []
        for path, kind in files:
            reports += import_files(store, [path], kind=kind, skip_bad=True)
    rows = sum(r.rows_valid for r in reports)
    bad = sum(len(r.bad) for r in reports)
    return f"yfinance: synced {start} to {end}: {rows:,} rows ({bad} bad rows skipped)"
