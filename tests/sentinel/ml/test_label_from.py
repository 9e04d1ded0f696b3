"""ml.label_from next_open: labels measured from the bar a T+1 order can be filled at."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st


def _panel(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2016-01-04", periods=n)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    opens = close * np.exp(rng.normal(0, 0.01, n))
    return pd.DataFrame({"date": days, "symbol": "AAA", "open": opens, "close": close})


def _samples(panel: pd.DataFrame) -> pd.DataFrame:
    d = pd.DatetimeIndex(panel["date"])
    rows = [(d[i], d[i + 8]) for i in (0, 5, 10, 15)] + [(d[-1], d[-1])]  # last: no next bar
    return pd.DataFrame(
        {
            "symbol": "AAA",
            "date": [a for a, _ in rows],
            "horizon_days": 14,
            "label": 0.0,
            "label_known_at": [b for _, b in rows],
            "features": [[0.0]] * len(rows),
        }
    )


def test_labels_equal_close_at_known_day_over_next_open():
    from sentinel.ml.dataset import relabel_from_next_open

    panel = _panel()
    out = relabel_from_next_open(_samples(panel), panel)
    assert len(out) == 4  # the sample with no bar after T is dropped
    for i, row in zip((0, 5, 10, 15), out.itertuples(), strict=True):
        expected = panel["close"].iloc[i + 8] / panel["open"].iloc[i + 1] - 1.0
        assert row.label == expected


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=24, max_value=29), st.floats(min_value=0.1, max_value=10.0))
def test_bars_after_the_label_is_known_change_nothing(cut, factor):
    from sentinel.ml.dataset import relabel_from_next_open

    panel = _panel()
    samples = _samples(panel).iloc[:4]  # every label known by bar 23
    later = panel.copy()
    later.loc[later.index >= cut, ["open", "close"]] *= factor
    a = relabel_from_next_open(samples, panel)
    b = relabel_from_next_open(samples, later)
    pd.testing.assert_frame_equal(a, b)
    assert not relabel_from_next_open(samples, panel.iloc[:cut]).empty
