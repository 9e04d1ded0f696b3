"""The feature book keeps only the bar columns the samples read (issue 13: memory)."""

from __future__ import annotations

import numpy as np

from sentinel.ml.dataset import SAMPLE_COLUMNS, FeatureBook, sample_rows


def test_the_book_keeps_closes_and_volumes_and_the_samples_are_unchanged(demo_store):
    syms = [s.symbol for s in demo_store.market.securities()][:3]
    book = FeatureBook(demo_store, syms)
    view = demo_store.view(None)
    for sym in syms:
        kept = book.prices(sym, view)
        assert list(kept.columns) == list(SAMPLE_COLUMNS)
        bars = view.market.get_prices(sym)  # every bar column, read again from the store
        assert kept.index.equals(bars.index)
        np.testing.assert_array_equal(kept.to_numpy(), bars[list(SAMPLE_COLUMNS)].to_numpy())
        frame = book.matrix(sym, view)
        assert sample_rows(sym, kept, frame, 14) == sample_rows(sym, bars, frame, 14)
