"""The row-wise ranks and Spearman correlations of :mod:`engine.nn_importance` are scipy's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata, spearmanr

from engine.nn_importance import _average_ranks_rows, _spearman_rows


@st.composite
def _matrix(draw) -> np.ndarray:
    rows, n = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    levels = draw(st.integers(1, 50))  # few levels: many ties; one level: constant rows
    out = rng.integers(0, levels, size=(rows, n)).astype(np.float64)
    if draw(st.booleans()):
        out += rng.normal(0, 1e-9, size=out.shape) * (rng.random(out.shape) < 0.5)
    return out


@settings(max_examples=150, deadline=None)
@given(_matrix())
def test_row_ranks_equal_rankdata_to_the_bit(values: np.ndarray) -> None:
    want = np.vstack([rankdata(row) for row in values])
    np.testing.assert_array_equal(_average_ranks_rows(values), want)


@settings(max_examples=150, deadline=None)
@given(_matrix(), st.integers(0, 2**31), st.booleans(), st.booleans())
def test_row_ics_equal_spearmanr_to_the_bit(preds, seed, nan_row, constant_y) -> None:
    rng = np.random.default_rng(seed)
    y = np.full(preds.shape[1], 0.5) if constant_y else rng.normal(size=preds.shape[1])
    if nan_row:
        preds[0, 0] = np.nan
    want = []
    for row in preds:
        if len(y) < 2 or np.isnan(row).any() or (row == row[0]).all() or (y == y[0]).all():
            want.append(0.0)  # undefined: rank_ic's 0
            continue
        ic = spearmanr(row, y).statistic
        want.append(float(ic) if np.isfinite(ic) else 0.0)
    np.testing.assert_array_equal(_spearman_rows(preds, y), np.array(want))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(100, 700), st.integers(0, 2**31), st.integers(2, 400))
def test_row_ics_equal_spearmanr_to_the_bit_on_long_rows(rows, n, seed, levels) -> None:
    """Rows longer than numpy's pairwise-summation block (128) and many ties: the row means
    and the per-row products are still spearmanr's own."""
    rng = np.random.default_rng(seed)
    preds = rng.integers(0, levels, size=(rows, n)).astype(np.float64) + rng.normal(size=(rows, n))
    preds[rng.random(rows) < 0.3] = np.round(preds[0])  # some rows with ties
    y = rng.normal(size=n)
    want = [float(spearmanr(row, y).statistic) for row in preds]
    np.testing.assert_array_equal(_spearman_rows(preds, y), np.array(want))
