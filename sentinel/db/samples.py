"""The training samples of one database decoded once and served behind the as-of guard.

A walk-forward run reads the samples known on every retrain day, then the report reads the last
retrain's samples twice more: the same rows decoded from JSON five to seven times (2.5 s of the
demo's 36 s, and ~55 MB of texts at each read of a 500-symbol run). :meth:`SampleCache.load`
decodes the table once; :meth:`SampleCache.frame` answers a bounded read with the rows the SQL
read returns (``label_known_at <= bound``, in the same ``ORDER BY symbol, date``), so the view's
guard and the result are unchanged. Any write to the table through the database drops the cache.

The cache keeps columns as arrays and the features as one read-only 2-D block (a row is a view of
it, made per read); a caller that wrote into a row would raise instead of changing the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["symbol", "date", "horizon_days", "label", "label_known_at"]


def sample_frame(
    rows: Sequence[tuple[Any, ...]], decode: Callable[[list[Any], Callable[[int], str]], list]
) -> pd.DataFrame:
    """The frame of ``SELECT symbol, date, horizon_days, label, label_known_at, features`` rows:
    dates as ``datetime64[ns]`` and each row's features a float64 array (``decode``)."""
    texts = [r[5] for r in rows]  # kept out of the frame: pandas would copy them to Arrow
    df = pd.DataFrame.from_records([r[:5] for r in rows], columns=COLUMNS)
    df["date"] = pd.to_datetime(df["date"].astype(str))
    df["label_known_at"] = pd.to_datetime(df["label_known_at"].astype(str))
    sym, day = df["symbol"].to_numpy(), df["date"].to_numpy()
    decoded = decode(
        texts, lambda i: f"training_samples: features of {sym[i]} on {str(day[i])[:10]}"
    )
    del texts
    features = np.empty(len(decoded), dtype=object)  # one float64 row per sample
    for i, row in enumerate(decoded):
        features[i] = row
    df["features"] = features
    return df


@dataclass
class SampleCache:
    """Every training sample as column arrays, in ``ORDER BY symbol, date`` order."""

    columns: pd.DataFrame  # the COLUMNS, RangeIndex
    known: np.ndarray  # label_known_at as datetime64[ns] (the bound's column)
    horizon: np.ndarray  # horizon_days as int64
    symbol: np.ndarray  # object
    block: np.ndarray | None  # (n, width) read-only float64 when every row has one width
    rows: np.ndarray | None  # else the rows themselves (object array)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> SampleCache:
        """The cache of a :func:`sample_frame` over the whole table."""
        feats = df["features"].to_numpy()
        block = None
        widths = {len(r) for r in feats}
        if len(widths) == 1:
            block = np.stack(list(feats)) if len(feats) else np.empty((0, 0))
            block.flags.writeable = False
        rows = None
        if block is None:
            rows = feats
            for r in rows:
                r.flags.writeable = False
        cols = df[COLUMNS].reset_index(drop=True)
        return cls(
            columns=cols,
            known=cols["label_known_at"].to_numpy(),
            horizon=cols["horizon_days"].to_numpy(dtype=np.int64),
            symbol=cols["symbol"].to_numpy(),
            block=block,
            rows=rows,
        )

    def frame(
        self, symbol: str | None, known_by: date | None, horizon_days: int | None
    ) -> pd.DataFrame:
        """What the SQL read returns for these filters (same rows, order, columns and values)."""
        keep = np.ones(len(self.known), dtype=bool)
        if symbol is not None:
            keep &= self.symbol == symbol
        if known_by is not None:
            keep &= self.known <= np.datetime64(known_by, "ns")
        if horizon_days is not None:
            keep &= self.horizon == int(horizon_days)
        idx = np.flatnonzero(keep)
        if not len(idx):  # as the SQL read builds it (its empty columns have other dtypes)
            return sample_frame([], lambda texts, where: [])
        out = self.columns.take(idx).reset_index(drop=True)
        features = np.empty(len(idx), dtype=object)
        source = self.block if self.block is not None else self.rows
        assert source is not None
        for k, i in enumerate(idx):
            features[k] = source[i]
        out["features"] = features
        return out
