"""The point-in-time store: SQLModel tables, the database plumbing and the repositories on it.

:class:`Store` bundles one :class:`Database` with its :class:`MarketView` (bounded market reads),
:class:`SignalRepository` (bounded signal reads and writes) and :class:`RecordRepository`
(application records); nothing outside this package writes SQL.
"""

from sentinel.db.database import Database
from sentinel.db.market import MarketView
from sentinel.db.records import RecordRepository
from sentinel.db.signals import ScoreRecord, SignalRepository
from sentinel.db.store import Store
from sentinel.db.tables import (
    BacktestRun,
    BenchmarkPrice,
    LiveAccount,
    LiveOrder,
    LiveRecommendation,
    MLPrediction,
    ModelRecord,
    Price,
    RegimeState,
    SecurityRow,
    Sentiment,
    SettingRow,
    TrainingSample,
    WaveletScore,
)

__all__ = [
    "BacktestRun",
    "BenchmarkPrice",
    "Database",
    "LiveAccount",
    "LiveOrder",
    "LiveRecommendation",
    "MLPrediction",
    "MarketView",
    "ModelRecord",
    "Price",
    "RecordRepository",
    "RegimeState",
    "ScoreRecord",
    "SecurityRow",
    "Sentiment",
    "SettingRow",
    "SignalRepository",
    "Store",
    "TrainingSample",
    "WaveletScore",
]
