"""The store: one database and the three faces it shows, bounded by an as-of day.

``store.market`` is what a simulation reads (:class:`~sentinel.db.market.MarketView`),
``store.signals`` the derived scores, predictions, regimes and samples
(:class:`~sentinel.db.signals.SignalRepository`), ``store.records`` the application's own records
(:class:`~sentinel.db.records.RecordRepository`) and ``store.db`` the plumbing
(:class:`~sentinel.db.database.Database`). ``store.view(day)`` makes an immutable *simulation
view* bound to ``day``: its market and signal reads default to that day and a read that asks for
anything later raises :class:`~sentinel.errors.LookAheadError`. Only the runner makes views for
simulated days (one per tick); nothing changes the day of an existing view.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property

from sqlalchemy import Engine

from sentinel.db.connection import make_engine
from sentinel.db.database import Database
from sentinel.db.market import MarketView
from sentinel.db.records import RecordRepository
from sentinel.db.signals import SignalRepository


class Store:
    """A bounded view of the sentinel database.

    Parameters
    ----------
    url:
        SQLAlchemy URL (callers pass ``get_settings().database_url`` for the configured one).
    engine:
        An existing engine to share instead of a URL.
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        if engine is None:
            if url is None:
                raise TypeError(
                    "Store needs a database URL or an engine, e.g. "
                    "Store(get_settings().database_url)"
                )
            engine = make_engine(url)
        self.db = Database(engine)
        self._day: date | None = None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (shared by every view; its owner disposes it)."""
        return self.db.engine

    # -- the simulation view -------------------------------------------------------------
    @property
    def day(self) -> date | None:
        """The day every read is bounded by ("now" of a simulation view), or None when unbounded."""
        return self._day

    def view(self, day: date | None) -> Store:
        """A new view sharing this database and its price cache, bounded at ``day`` (None:
        unbounded).

        Views are cheap (no connection is opened) and immutable: "now" moves by making a new view.
        """
        if day is not None and not isinstance(day, date):
            raise TypeError(f"view(day): a datetime.date, not {type(day).__name__}")
        other = Store(engine=self.engine)
        other.db = self.db
        other._day = day.date() if isinstance(day, datetime) else day
        return other

    # -- the three repositories --------------------------------------------------------------
    @cached_property
    def market(self) -> MarketView:
        """Securities, bars, benchmarks and sentiment, bounded by :attr:`day`."""
        return MarketView(self.db, self._day)

    @cached_property
    def signals(self) -> SignalRepository:
        """Scores, ML predictions, regime states and training samples, bounded by :attr:`day`."""
        return SignalRepository(self.db, self._day)

    @cached_property
    def records(self) -> RecordRepository:
        """Model records, settings, backtest runs and live accounts (not bounded)."""
        return RecordRepository(self.db)
