"""SQLModel tables: the schema of the point-in-time store.

Every row that a backtest may read carries the date it became known (``date`` for daily bars,
``calculated_at`` / ``predicted_at`` / ``label_known_at`` for derived values), and every read in
:mod:`sentinel.db.market` and :mod:`sentinel.db.signals` filters on it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, Index, Text, true
from sqlmodel import Field, SQLModel


class SecurityRow(SQLModel, table=True):
    """A tradable security and the span it belonged to the investable universe."""

    __tablename__ = "securities"
    symbol: str = Field(primary_key=True, max_length=32)
    name: str | None = None
    sector: str | None = Field(default=None, index=True)
    universe_from: dt.date | None = None
    universe_to: dt.date | None = None
    ml_enabled: bool = Field(default=True, sa_column_kwargs={"server_default": true()})


class Price(SQLModel, table=True):
    """One daily bar. ``date`` is when it became known (that day's close)."""

    __tablename__ = "prices"
    # Clustered by (symbol, date) on SQLite: one symbol's history is one contiguous range.
    __table_args__ = (Index("ix_prices_date", "date"), {"sqlite_with_rowid": False})
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    open: float
    high: float
    low: float
    close: float
    adj_close: float | None = None
    volume: float


class BenchmarkPrice(SQLModel, table=True):
    """A daily bar of a benchmark index or ETF (SPY, ^GSPC, the demo market)."""

    __tablename__ = "benchmark_prices"
    __table_args__ = {"sqlite_with_rowid": False}
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float
    volume: float | None = None


class WaveletScore(SQLModel, table=True):
    """A wavelet score: ``as_of`` is the data date, ``calculated_at`` the end of that day."""

    __tablename__ = "wavelet_scores"
    __table_args__ = (Index("ix_wavelet_symbol_calc", "symbol", "calculated_at"),)
    symbol: str = Field(primary_key=True, max_length=32)
    as_of: dt.date = Field(primary_key=True)
    calculated_at: float
    score: float
    components: dict = Field(default_factory=dict, sa_column=Column(JSON))


class MLPrediction(SQLModel, table=True):
    """One prediction per symbol and date; ``predicted_at`` is the end of that day (Unix s)."""

    __tablename__ = "ml_predictions"
    __table_args__ = (Index("ix_mlpred_symbol_at", "symbol", "predicted_at"),)
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    predicted_at: float
    predicted_return: float | None = None
    ml_score: float | None = None
    wavelet_score: float | None = None
    blended_score: float
    blend_ratio: float
    regime_score: float | None = None
    regime_dampening: float | None = None
    model_id: str | None = Field(default=None, max_length=128)
    model_mode: str | None = Field(default=None, max_length=32)
    fallback: str | None = Field(default=None, max_length=128)
    realized_return: float | None = None


class RegimeState(SQLModel, table=True):
    """The HMM regime of a symbol on a date, from data up to that date."""

    __tablename__ = "regime_states"
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    regime: int
    regime_name: str = Field(max_length=16)
    confidence: float


class TrainingSample(SQLModel, table=True):
    """Features as of ``date`` and the forward return label, known on ``label_known_at``."""

    __tablename__ = "training_samples"
    __table_args__ = (Index("ix_samples_known", "symbol", "label_known_at"),)
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    horizon_days: int = Field(primary_key=True)
    features: list = Field(sa_column=Column(JSON, nullable=False))
    label: float
    label_known_at: dt.date


class ModelRecord(SQLModel, table=True):
    """The current per-symbol model: where it is, what it was trained on, how it validated."""

    __tablename__ = "model_records"
    symbol: str = Field(primary_key=True, max_length=32)
    trained_at: dt.datetime
    training_samples: int
    train_end: dt.date | None = None
    version: str | None = Field(default=None, max_length=64)
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON))


class SettingRow(SQLModel, table=True):
    """A setting changed through the API; the value is JSON."""

    __tablename__ = "settings"
    key: str = Field(primary_key=True, max_length=64)
    value: dict = Field(sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime


class Sentiment(SQLModel, table=True):
    """A daily sentiment score in [-1, 1], known at the end of ``date``."""

    __tablename__ = "sentiment"
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    score: float


class BacktestRun(SQLModel, table=True):
    """A finished backtest: its config, metrics, trades and equity curve."""

    __tablename__ = "backtest_runs"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    config_hash: str = Field(index=True, max_length=64)
    created_at: dt.datetime
    sweep_id: str | None = Field(default=None, index=True, max_length=64)
    config: dict = Field(sa_column=Column(JSON, nullable=False))
    metrics: dict = Field(sa_column=Column(JSON, nullable=False))
    trades_csv: str = Field(default="", sa_column=Column(Text))
    equity_csv: str = Field(default="", sa_column=Column(Text))


class LiveAccount(SQLModel, table=True):
    """A live (paper) account's book after the last processed day."""

    __tablename__ = "live_accounts"
    account: str = Field(primary_key=True, max_length=128)
    cash: float
    positions: dict = Field(default_factory=dict, sa_column=Column(JSON))
    last_price: dict = Field(default_factory=dict, sa_column=Column(JSON))
    last_day: dt.date | None = None
    updated_at: dt.datetime


class LiveOrder(SQLModel, table=True):
    """An order sent by live mode; the id derives from account, date and symbol (idempotent)."""

    __tablename__ = "live_orders"
    __table_args__ = (Index("ix_live_orders_account_status", "account", "status"),)
    order_id: str = Field(primary_key=True, max_length=200)
    account: str = Field(max_length=128)
    symbol: str = Field(max_length=32)
    quantity: float
    decided_on: dt.date
    status: str = Field(default="pending", max_length=16)  # pending | filled | cancelled
    fill_day: dt.date | None = None
    fill_price: float | None = None
    commission: float | None = None
    slippage: float | None = None
    note: str | None = Field(default=None, max_length=200)


class LiveRecommendation(SQLModel, table=True):
    """What the planner recommended on a live rebalance day."""

    __tablename__ = "live_recommendations"
    account: str = Field(primary_key=True, max_length=128)
    date: dt.date = Field(primary_key=True)
    symbol: str = Field(primary_key=True, max_length=32)
    target_weight: float
    blended_score: float | None = None
    wavelet_score: float | None = None
    ml_score: float | None = None
    predicted_return: float | None = None


class CorporateAction(SQLModel, table=True):
    """A split and/or cash dividend of one symbol, effective (and known) on its ex-date ``date``.

    ``split`` is new shares per old share (2.0 for 2:1, 0.5 for 1:2); ``dividend`` is cash per
    share as traded on the ex-date. Prices are stored raw; reads adjust them with the actions
    known on the day read (:mod:`sentinel.data.actions`).
    """

    __tablename__ = "corporate_actions"
    symbol: str = Field(primary_key=True, max_length=32)
    date: dt.date = Field(primary_key=True)
    split: float = 1.0
    dividend: float = 0.0


class Listing(SQLModel, table=True):
    """A span a symbol was listed (traded); ``listed_to`` is its last day, None while listed.

    A held position is settled on the first session after ``listed_to`` at ``cash_out`` (or its
    last price when None).
    """

    __tablename__ = "listings"
    symbol: str = Field(primary_key=True, max_length=32)
    listed_from: dt.date = Field(primary_key=True)
    listed_to: dt.date | None = None
    reason: str | None = Field(default=None, max_length=200)
    cash_out: float | None = None


class SectorSpan(SQLModel, table=True):
    """The sector of a symbol from ``valid_from`` to ``valid_to`` (inclusive; None: still)."""

    __tablename__ = "sector_history"
    symbol: str = Field(primary_key=True, max_length=32)
    valid_from: dt.date = Field(primary_key=True)
    valid_to: dt.date | None = None
    sector: str = Field(max_length=64)


class IndexMembership(SQLModel, table=True):
    """A span a symbol belonged to an index (inclusive; ``valid_to`` None: still a member)."""

    __tablename__ = "index_membership"
    index_name: str = Field(primary_key=True, max_length=64)
    symbol: str = Field(primary_key=True, max_length=32)
    valid_from: dt.date = Field(primary_key=True)
    valid_to: dt.date | None = None
