"""The vectorised evaluation helpers equal the per-row code they replaced (kept here)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate import returns_from_closes


def _forward_returns_per_row(closes, keys, horizon_days, end):
    """The former loop of engine.evaluate.forward_returns (one searchsorted pair per row)."""
    out = np.full(len(keys), np.nan)
    h = pd.Timedelta(days=int(horizon_days))
    limit = pd.Timestamp(end)
    days = pd.to_datetime(keys["date"]).to_numpy()
    for sym, idx in keys.groupby("symbol").indices.items():
        if sym not in closes:
            continue
        s = closes[sym].dropna()
        when = s.index.to_numpy()
        for i in idx:
            t = pd.Timestamp(days[i])
            if t + h > limit:
                continue
            a = when.searchsorted(t.to_datetime64(), side="right") - 1
            b = when.searchsorted((t + h).to_datetime64(), side="right") - 1
            if a >= 0 and b > a and when[a] == t.to_datetime64():
                out[i] = s.iloc[b] / s.iloc[a] - 1.0
    return out


@settings(max_examples=80, deadline=None)
@given(
    n_days=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    holes=st.floats(0.0, 0.6),
    horizon=st.integers(1, 20),
    end_at=st.floats(0.0, 1.2),
    n_keys=st.integers(0, 60),
)
def test_forward_returns_equal_the_per_row_loop(n_days, seed, holes, horizon, end_at, n_keys):
    rng = np.random.default_rng(seed)
    bdays = pd.bdate_range("2020-01-01", periods=n_days)
    closes = pd.DataFrame(
        rng.lognormal(0, 0.1, size=(n_days, 3)) * 100, index=bdays, columns=["A", "B", "C"]
    )
    closes = closes.mask(rng.random(closes.shape) < holes)  # missing bars and a gappy name
    # keys: bar days, weekends and days after the panel, for known names and one without data
    span = pd.date_range("2019-12-28", periods=n_days + 20)
    keys = pd.DataFrame(
        {
            "date": rng.choice(span, size=n_keys),
            "symbol": rng.choice(["A", "B", "C", "ZZ"], size=n_keys),
        },
        index=rng.permutation(n_keys) + 100,
    )
    end = (bdays[0] + pd.Timedelta(days=int(end_at * (n_days + 10)))).date()
    new = returns_from_closes(closes, keys, horizon, end)
    old = _forward_returns_per_row(closes, keys, horizon, end)
    np.testing.assert_array_equal(new, old)
    assert isinstance(end, date)
