"""The point-in-time store: SQLModel tables and the one gateway that reads and writes them."""

from sentinel.db.store import ScoreRecord, Store
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
    Security,
    Sentiment,
    SettingRow,
    TrainingSample,
    WaveletScore,
)

__all__ = [
    "BacktestRun",
    "BenchmarkPrice",
    "LiveAccount",
    "LiveOrder",
    "LiveRecommendation",
    "MLPrediction",
    "ModelRecord",
    "Price",
    "RegimeState",
    "ScoreRecord",
    "Security",
    "Sentiment",
    "SettingRow",
    "Store",
    "TrainingSample",
    "WaveletScore",
]
