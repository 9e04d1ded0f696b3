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


class _Book:
    """panel_as_of: features for a seeded subset of the asked symbols, in a shuffled order."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def panel_as_of(self, syms, view):
        keep = [s for s in syms if self.rng.random() < 0.7]
        self.rng.shuffle(keep)
        values = self.rng.normal(size=(len(keep), 20))
        return pd.DataFrame(values, index=pd.Index(keep, name="symbol"))


class _Store:
    def view(self, day):
        return None


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n_days=st.integers(1, 6), n_syms=st.integers(1, 12))
def test_rule_baselines_read_each_symbols_own_feature_row(seed, n_days, n_syms):
    """add_baselines's rule columns equal ``rule_predictions`` of the rows picked by label with
    ``feats.loc`` (the former code), whatever the order and the subset of the day's features."""
    from engine.evaluate import add_baselines
    from sentinel.ml.baselines import rule_predictions

    days = pd.date_range("2021-01-04", periods=n_days, freq="7D")
    symbols = [f"S{i:02d}" for i in range(n_syms)]
    scores = pd.DataFrame([(d, s) for d in days for s in symbols], columns=["date", "symbol"])
    out = add_baselines(_Store(), scores, _Book(seed), [], horizon_days=14, min_samples=1)
    book = _Book(seed)  # the same features again, picked the former way
    for idx in scores.groupby("date").indices.values():
        syms = list(scores["symbol"].to_numpy()[idx])
        feats = book.panel_as_of(syms, None)
        if feats.empty:
            continue
        rows = idx[[s in feats.index for s in syms]]
        X = feats.loc[scores["symbol"].to_numpy()[rows]].to_numpy(dtype="float64")
        for name, pred in rule_predictions(X, 14).items():
            np.testing.assert_array_equal(out[name].to_numpy()[rows], pred)
            others = np.setdiff1d(idx, rows)
            assert out[name].isna().to_numpy()[others].all()
