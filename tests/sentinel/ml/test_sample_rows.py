"""``sample_rows`` equals the per-anchor loop it replaced, row for row, on awkward histories."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ml.dataset import (
    GAP_LOOKBACK,
    MAX_GAP_DAYS,
    MIN_HISTORY,
    VOLUME_LOOKBACK,
    sample_rows,
)


def reference_sample_rows(
    symbol: str,
    prices: pd.DataFrame,
    features: pd.DataFrame,
    horizon_days: int,
    since: date | None = None,
) -> list[dict]:
    """The per-anchor loop :func:`sample_rows` replaced (2026-12-01), kept as its reference."""
    closes = prices["close"].astype("float64")
    ok = np.isfinite(closes) & (closes > 0)
    closes = closes[ok]
    if len(closes) <= MIN_HISTORY:
        return []
    idx = closes.index
    gap = np.diff(idx.to_numpy().astype("datetime64[D]")).astype(np.int64) > MAX_GAP_DAYS
    gaps_before = np.concatenate([[0], np.cumsum(gap)])  # gaps_before[i]: gaps up to bar i
    volume = prices["volume"].astype("float64")[ok] if "volume" in prices else None
    untraded = (
        np.concatenate([[0], np.cumsum(~(volume.to_numpy() > 0))]) if volume is not None else None
    )
    last_day = idx[-1]
    weeks = pd.Series(idx, index=idx).groupby([idx.isocalendar().year, idx.isocalendar().week])
    anchors = weeks.max().sort_values()
    rows = []
    for t in anchors:
        pos = idx.get_loc(t)
        if pos < MIN_HISTORY or (since is not None and t.date() < since):
            continue
        horizon_end = t + timedelta(days=horizon_days)
        if horizon_end > last_day:
            break  # the label's last close is not final yet
        j = idx.searchsorted(horizon_end, side="right") - 1
        if j <= pos:
            continue
        if gaps_before[j] - gaps_before[max(0, pos - GAP_LOOKBACK)] > 0:
            continue
        lo = max(0, pos + 1 - VOLUME_LOOKBACK)
        if untraded is not None and 2 * (untraded[pos + 1] - untraded[lo]) > pos + 1 - lo:
            continue
        label = float(closes.iloc[j] / closes.iloc[pos] - 1.0)
        feats = features.loc[t].to_numpy(dtype="float64")
        if not (np.isfinite(label) and np.isfinite(feats).all()):
            continue
        rows.append(
            {
                "symbol": symbol,
                "date": t.date(),
                "horizon_days": horizon_days,
                "features": feats.tolist(),
                "label": label,
                "label_known_at": idx[j].date(),
            }
        )
    return rows


def _history(
    seed: int, n: int, gaps: int, dead: int, holes: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars with long gaps, runs of zero volume, NaN / zero closes and NaN features."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-01", periods=n)
    keep = np.ones(n, bool)
    for g in rng.integers(0, n, gaps):  # a gap longer than MAX_GAP_DAYS
        keep[g : g + MAX_GAP_DAYS + int(rng.integers(1, 5))] = False
    days = days[keep]
    m = len(days)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, m)))
    volume = rng.integers(1, 1000, m).astype(float)
    for d in rng.integers(0, max(1, m), dead):  # untraded stretches
        volume[d : d + int(rng.integers(5, 30))] = 0.0
    for h in rng.integers(0, max(1, m), holes):  # unusable closes
        close[h] = np.nan if h % 2 else 0.0
    prices = pd.DataFrame({"close": close, "volume": volume}, index=days)
    feats = pd.DataFrame(rng.normal(size=(m, 4)), index=days, columns=list("abcd"))
    feats.iloc[rng.integers(0, max(1, m), holes)] = np.nan
    return prices, feats


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(MIN_HISTORY - 5, 700),
    gaps=st.integers(0, 3),
    dead=st.integers(0, 4),
    holes=st.integers(0, 6),
    horizon=st.sampled_from([1, 5, 14, 30]),
    since_days=st.one_of(st.none(), st.integers(0, 900)),
)
def test_sample_rows_equal_the_per_anchor_loop(seed, n, gaps, dead, holes, horizon, since_days):
    prices, feats = _history(seed, n, gaps, dead, holes)
    since = None if since_days is None else date(2015, 1, 1) + timedelta(days=since_days)
    got = sample_rows("X", prices, feats, horizon, since)
    assert got == reference_sample_rows("X", prices, feats, horizon, since)


def test_the_histories_exercise_every_rule():
    """The histories skip samples (gaps; dead volume and holes) and still yield many."""
    gappy = reference_sample_rows("X", *_history(3, 700, 2, 0, 0), 14)
    prices, feats = _history(3, 700, 0, 3, 6)
    rows = reference_sample_rows("X", prices, feats, 14)
    clean = reference_sample_rows("X", prices.assign(volume=1.0), feats.fillna(0), 14)
    assert 20 < len(gappy) < len(clean) and 20 < len(rows) < len(clean)


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(st.integers(0, 400), min_size=0, max_size=40),
    targets=st.lists(st.integers(-5, 410), min_size=0, max_size=30),
    shuffle=st.booleans(),
)
def test_positions_equal_get_indexer(days, targets, shuffle):
    """The binary search that replaced ``get_indexer`` (which keeps a hash table per index)
    answers the same, absent targets -1; an unsorted index falls back to ``get_indexer``."""
    from sentinel.ml.dataset import _positions

    base = pd.Timestamp("2020-01-01")
    keys = sorted(set(days))
    if shuffle:
        keys = keys[::-1]
    index = pd.DatetimeIndex([base + pd.Timedelta(days=d) for d in keys])
    want = pd.DatetimeIndex([base + pd.Timedelta(days=d) for d in targets])
    got = _positions(index, want)
    assert got.tolist() == index.get_indexer(want).tolist()
