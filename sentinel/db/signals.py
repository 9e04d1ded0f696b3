"""The signal repositories: wavelet scores, ML predictions, regime states and training samples.

Derived values a simulation writes and reads back. Reads are bounded by ``day`` exactly as market
reads are (scores and predictions by when they were calculated, samples by when their label was
known) and raise :class:`~sentinel.errors.LookAheadError` on anything later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from sentinel.db.bounded import Bounded
from sentinel.db.database import decode_float_rows, decode_json
from sentinel.db.samples import SampleCache, sample_frame
from sentinel.db.tables import MLPrediction, RegimeState
from sentinel.timeutil import end_of_day_ts, require_date, to_date

#: Rows decoded at a time when the training samples are preloaded (~10 MB of JSON text).
SAMPLE_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A stored wavelet score and when it was calculated (Unix seconds, end of its day)."""

    symbol: str
    as_of: date
    calculated_at: float
    score: float
    components: dict[str, Any]


class SignalRepository(Bounded):
    """Scores, predictions, regime states and training samples of one database as of ``day``."""

    # -- wavelet scores ---------------------------------------------------------------------
    def save_scores(self, records: Iterable[ScoreRecord]) -> int:
        """Upsert scores keyed by (symbol, as_of); returns how many were written."""
        rows = [
            {
                "symbol": r.symbol,
                "as_of": r.as_of,
                "calculated_at": float(r.calculated_at),
                "score": float(r.score),
                "components": json.dumps(r.components),
            }
            for r in records
        ]
        return self.db.upsert("wavelet_scores", ["symbol", "as_of"], rows)

    def get_score(self, symbol: str, as_of_date: date | float | None = None) -> ScoreRecord | None:
        """The latest score with ``calculated_at <= as_of_date`` (Unix s or a date's end)."""
        return self.get_scores([symbol], as_of_date).get(symbol)

    def get_scores(
        self, symbols: Iterable[str], as_of_date: date | float | None = None
    ) -> dict[str, ScoreRecord]:
        """Per symbol, the latest score calculated by ``as_of_date`` (none: symbol left out)."""
        symbols = list(symbols)
        ts = self._bound_ts("wavelet_scores", symbols[0] if len(symbols) == 1 else None, as_of_date)
        if not symbols:
            return {}
        sql = (
            "SELECT w.symbol, w.as_of, w.calculated_at, w.score, w.components FROM wavelet_scores w"
            " JOIN (SELECT symbol, MAX(calculated_at) AS m FROM wavelet_scores WHERE 1=1"
            + (" AND calculated_at <= :t" if ts is not None else "")
            + " GROUP BY symbol) x ON w.symbol = x.symbol AND w.calculated_at = x.m"
        )
        params = {"t": ts} if ts is not None else {}
        wanted = set(symbols)
        out: dict[str, ScoreRecord] = {}
        for sym, asof, calc, score, comp in self.db.rows(sql, **params):
            if sym in wanted:
                out[sym] = ScoreRecord(
                    sym, to_date(asof), float(calc), float(score), decode_json(comp)
                )
        return out

    # -- ML predictions ---------------------------------------------------------------------
    def upsert_ml_predictions(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write predictions keyed by (symbol, date); ``predicted_at`` defaults to the day's end."""
        prepared = []
        for r in rows:
            r = dict(r)
            r["date"] = to_date(r["date"])
            r.setdefault("predicted_at", end_of_day_ts(r["date"]))
            prepared.append(r)
        return self.db.upsert("ml_predictions", ["symbol", "date"], prepared)

    def get_ml_prediction_as_of(self, symbol: str, as_of_ts: date | float) -> MLPrediction | None:
        """The most recent prediction for ``symbol`` with ``predicted_at <= as_of_ts``."""
        ts = self._bound_ts("ml_predictions", symbol, as_of_ts)
        with Session(self.db.engine) as s:
            q = select(MLPrediction).where(MLPrediction.symbol == symbol)
            if ts is not None:
                q = q.where(MLPrediction.predicted_at <= ts)
            return s.exec(q.order_by(MLPrediction.predicted_at.desc()).limit(1)).first()  # type: ignore[attr-defined]

    def get_ml_predictions(
        self,
        symbol: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        """Stored predictions (for drift and reports) up to ``end``, as a DataFrame."""
        e = self._bound("ml_predictions", symbol, end)
        with Session(self.db.engine) as s:
            q = select(MLPrediction)
            if symbol is not None:
                q = q.where(MLPrediction.symbol == symbol)
            if start is not None:
                q = q.where(MLPrediction.date >= require_date(start, "start"))
            if e is not None:
                q = q.where(MLPrediction.date <= e)
            rows = [r.model_dump() for r in s.exec(q.order_by(MLPrediction.date))]
        return pd.DataFrame(rows, columns=list(MLPrediction.model_fields))

    def existing_prediction_keys(self, symbol: str) -> set[date]:
        return {
            to_date(r[0])
            for r in self.db.rows("SELECT date FROM ml_predictions WHERE symbol = :s", s=symbol)
        }

    # -- regime states ----------------------------------------------------------------------
    def upsert_regime_state(
        self, symbol: str, d: date, regime: int, regime_name: str, confidence: float
    ) -> None:
        """Write one HMM regime row; writing the same (symbol, date) again replaces it."""
        self.upsert_regime_states(
            [
                {
                    "symbol": symbol,
                    "date": require_date(d, "regime state date"),
                    "regime": int(regime),
                    "regime_name": regime_name,
                    "confidence": float(confidence),
                }
            ]
        )

    def upsert_regime_states(self, rows: Iterable[dict[str, Any]]) -> int:
        return self.db.upsert("regime_states", ["symbol", "date"], list(rows))

    def get_regime_state(self, symbol: str, as_of: date | None = None) -> RegimeState | None:
        """The latest stored regime of ``symbol`` on or before ``as_of``."""
        e = self._bound("regime_states", symbol, as_of)
        with Session(self.db.engine) as s:
            q = select(RegimeState).where(RegimeState.symbol == symbol)
            if e is not None:
                q = q.where(RegimeState.date <= e)
            return s.exec(q.order_by(RegimeState.date.desc()).limit(1)).first()  # type: ignore[attr-defined]

    def existing_regime_dates(self, symbol: str) -> set[date]:
        return {
            to_date(r[0])
            for r in self.db.rows("SELECT date FROM regime_states WHERE symbol = :s", s=symbol)
        }

    # -- training samples -------------------------------------------------------------------
    def upsert_training_samples(self, rows: Iterable[dict[str, Any]]) -> int:
        prepared = []
        for r in rows:
            r = dict(r)
            r["features"] = json.dumps([float(x) for x in r["features"]])
            prepared.append(r)
        return self.db.upsert("training_samples", ["symbol", "date", "horizon_days"], prepared)

    def get_training_samples(
        self,
        symbol: str | None = None,
        known_by: date | None = None,
        horizon_days: int | None = None,
    ) -> pd.DataFrame:
        """Samples whose label was known by ``known_by`` (default: the simulation date).

        Columns: symbol, date, horizon_days, label, label_known_at, features (one float64
        array per row: views of one 2-D array, see :func:`~sentinel.db.database.decode_float_rows`).
        """
        k = self._bound("training_samples", symbol, known_by)
        if self.db.samples is not None:  # preloaded: the same frame, from memory
            return self.db.samples.frame(symbol, k, horizon_days)
        sql = (
            "SELECT symbol, date, horizon_days, label, label_known_at, features"
            " FROM training_samples WHERE 1=1"
        )
        params: dict[str, Any] = {}
        if symbol is not None:
            sql += " AND symbol = :s"
            params["s"] = symbol
        if k is not None:
            sql += " AND label_known_at <= :k"
            params["k"] = k
        if horizon_days is not None:
            sql += " AND horizon_days = :h"
            params["h"] = int(horizon_days)
        rows = self.db.rows(sql + " ORDER BY symbol, date", **params)
        return sample_frame(rows, decode_float_rows)

    def preload_samples(self) -> None:
        """Decode the whole table once for every view of this database (a walk-forward run
        reads the samples known at each retrain); reads stay bounded as before and any write
        to the table drops the cache (:mod:`sentinel.db.samples`)."""
        if self.db.samples is None:
            # decoded a chunk at a time: the whole table's tuples and JSON-decoded lists held
            # at once were the 500-symbol run's peak (~290 MB of the main process's ~800 MB)
            chunks = self.db.row_chunks(
                "SELECT symbol, date, horizon_days, label, label_known_at, features"
                " FROM training_samples ORDER BY symbol, date",
                SAMPLE_CHUNK,
            )
            frames = [sample_frame(rows, decode_float_rows) for rows in chunks]
            frames = frames or [sample_frame([], decode_float_rows)]
            df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            self.db.samples = SampleCache.from_frame(df)

    def newest_sample_date(self, horizon_days: int) -> date | None:
        """The latest sample date for the horizon among samples known by the bound (None: no
        sample), without reading the samples."""
        k = self._bound("training_samples", None, None)
        sql = "SELECT MAX(date) FROM training_samples WHERE horizon_days = :h"
        params: dict[str, Any] = {"h": int(horizon_days)}
        if k is not None:
            sql += " AND label_known_at <= :k"
            params["k"] = k
        value = self.db.rows(sql, **params)[0][0]
        return None if value is None else to_date(value)

    def symbols_with_samples(self, horizon_days: int) -> set[str]:
        """Symbols that have any training sample for the horizon (known by the bound, if any)."""
        sql = "SELECT DISTINCT symbol FROM training_samples WHERE horizon_days = :h"
        return {r[0] for r in self.db.rows(sql, h=int(horizon_days))}
