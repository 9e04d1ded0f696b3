"""Training samples on the demo data: labels by hand, finality, idempotence, incremental, as-of."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.errors import LookAheadError
from sentinel.ml.dataset import FeatureBook, generate_samples
from tests.future import delete_where_after


@pytest.fixture
def syms(demo_store):
    have = [s.symbol for s in demo_store.market.securities()]
    return have[:2]


def _samples(store, **kw):
    return store.view(None).signals.get_training_samples(**kw)


def test_label_is_return_to_last_close_within_horizon(demo_store, syms):
    generate_samples(demo_store, syms, horizon_days=14)
    df = _samples(demo_store)
    assert set(df["symbol"]) == set(syms)
    for sym in syms:
        closes = demo_store.market.get_prices(sym)["close"]
        part = df[df["symbol"] == sym]
        for _, row in part.iloc[[0, len(part) // 2, -1]].iterrows():
            t = row["date"]
            end = t + timedelta(days=14)
            window = closes[closes.index <= end]
            expected = window.iloc[-1] / closes.loc[t] - 1.0
            assert row["label"] == pytest.approx(expected, rel=1e-12)
            assert row["label_known_at"] == window.index[-1]
            assert row["label_known_at"] <= end
            assert len(row["features"]) == 20


def test_samples_only_once_label_is_final(demo_store, syms):
    """No sample whose horizon reaches past the last bar: its label could still change."""
    generate_samples(demo_store, syms, horizon_days=14)
    df = _samples(demo_store)
    for sym in syms:
        last = demo_store.market.get_prices(sym).index[-1]
        dates = df.loc[df["symbol"] == sym, "date"]
        assert (dates + timedelta(days=14) <= last).all()
        # and the newest week whose horizon *is* complete is present (weekly anchors end weeks)
        assert dates.max() + timedelta(days=21) > last


def test_weekly_anchors_and_truncated_history(demo_store, syms):
    """A sample is generated from data up to its anchor only: cutting the future keeps it."""
    generate_samples(demo_store, syms, horizon_days=14)
    full = _samples(demo_store).set_index(["symbol", "date"])
    dates = full.reset_index()
    iso = dates["date"].dt.isocalendar()
    assert not dates.assign(y=iso.year, w=iso.week).duplicated(["symbol", "y", "w"]).any()
    assert dates.groupby("symbol")["date"].diff().dt.days.median() == 7
    cut = pd.Timestamp(dates["date"].quantile(0.5)).date()
    with demo_store.db.transaction() as conn:
        delete_where_after(demo_store, "prices", cut, conn)
        delete_where_after(demo_store, "benchmark_prices", cut, conn)
    last = pd.Timestamp(demo_store.market.trading_days()[-1])
    written = generate_samples(demo_store, syms, horizon_days=14)
    again = _samples(demo_store).set_index(["symbol", "date"])
    final = full[[d + timedelta(days=14) <= last for _, d in full.index]]
    assert sum(written.values()) == len(final) > 20
    # every sample rewritten from the truncated history is exactly the one from the full history
    pd.testing.assert_frame_equal(again.loc[final.index], final)


def test_idempotent_rerun(demo_store, syms):
    first = generate_samples(demo_store, syms, horizon_days=14)
    a = _samples(demo_store)
    second = generate_samples(demo_store, syms, horizon_days=14)
    b = _samples(demo_store)
    assert first == second
    assert demo_store.db.count("training_samples") == sum(first.values())
    pd.testing.assert_frame_equal(a, b)


def test_incremental_writes_only_recent_samples(demo_store, syms):
    book = FeatureBook(demo_store, syms)
    written = generate_samples(demo_store, syms, horizon_days=14, incremental_days=90, book=book)
    inc = _samples(demo_store)
    for sym in syms:
        last = book.prices(sym, demo_store).index[-1]
        dates = inc.loc[inc["symbol"] == sym, "date"]
        assert len(dates) == written[sym] > 0
        assert (dates >= last - timedelta(days=90 + 14)).all()
    generate_samples(demo_store, syms, horizon_days=14, book=book)
    full = _samples(demo_store)
    assert len(full) > 3 * len(inc)
    merged = full.merge(inc, on=["symbol", "date"], suffixes=("", "_inc"))
    assert len(merged) == len(inc)
    assert (merged["label"] == merged["label_inc"]).all()


def test_walk_forward_read_excludes_labels_known_later(demo_store, syms):
    generate_samples(demo_store, syms, horizon_days=14)
    full = _samples(demo_store)
    d = full["label_known_at"].quantile(0.5).date()
    known = demo_store.view(None).signals.get_training_samples(known_by=d)
    assert 0 < len(known) < len(full)
    assert (known["label_known_at"] <= pd.Timestamp(d)).all()
    assert len(known) == int((full["label_known_at"] <= pd.Timestamp(d)).sum())
    # a sample dated before d whose label became known after d is left out
    late = full[(full["date"] <= pd.Timestamp(d)) & (full["label_known_at"] > pd.Timestamp(d))]
    assert not late.empty
    assert not set(zip(late["symbol"], late["date"], strict=True)) & set(
        zip(known["symbol"], known["date"], strict=True)
    )
    sim = demo_store.view(d)
    assert len(sim.signals.get_training_samples()) == len(known)
    with pytest.raises(LookAheadError):
        sim.signals.get_training_samples(known_by=d + timedelta(days=1))


def test_samples_across_a_gap_or_untraded_bars_are_dropped():
    """Real data has pre-listing junk (BHF): no sample whose windows span a gap or dead bars."""
    from sentinel.ml.dataset import sample_rows

    days = pd.bdate_range("2014-01-01", periods=1100)
    days = days[(days < "2015-01-01") | (days >= "2016-01-01")]  # a year without bars
    prices = pd.DataFrame({"close": 10.0 * 1.001 ** np.arange(len(days)),
                           "volume": 1e6}, index=days)  # fmt: skip
    prices.loc[days < "2014-03-01", "volume"] = 0.0  # untraded quotes first
    features = pd.DataFrame(0.0, index=days, columns=range(20))
    rows = sample_rows("X", prices, features, 14)
    dates = pd.DatetimeIndex([r["date"] for r in rows])
    known = pd.DatetimeIndex([r["label_known_at"] for r in rows])
    assert len(rows) > 40
    assert dates.min() >= pd.Timestamp("2014-03-01")  # after the untraded stretch
    before, after = dates[dates < "2015-01-01"], dates[dates >= "2016-01-01"]
    assert (known[dates < "2015-01-01"] < pd.Timestamp("2015-01-01")).all()  # label before gap
    assert len(before) > 0 and len(after) > 0
    # after the gap, samples start only once 252 bars of the feature window lie past it
    assert after.min() >= days[days >= "2016-01-01"][252]


def test_feature_book_reads_are_bounded_by_the_view(demo_store, syms):
    """The book is a cache of whole-history features, not a way around the view's day."""
    book = FeatureBook(demo_store, syms)
    d = demo_store.market.trading_days()[400]
    view = demo_store.view(d)
    panel = book.panel_as_of(syms, view)
    assert list(panel.index) == syms and panel.notna().all().all()
    assert book.matrix(syms[0], view).index[-1] == pd.Timestamp(d)
    assert book.prices(syms[0], view).index[-1] == pd.Timestamp(d)
    assert book.prices(syms[0], demo_store.view(None)).index[-1] > pd.Timestamp(d)
    with pytest.raises(LookAheadError, match="features"):
        book.panel_as_of(syms, view, as_of=d + timedelta(days=1))
    with pytest.raises(ValueError, match="unbounded"):
        book.panel_as_of(syms, demo_store.view(None))
    earlier = book.panel_as_of(syms, view, as_of=d - timedelta(days=30))
    assert not earlier.equals(panel)


# -- point-in-time sectors: the sector feature reads the sector in force on each row's date --------
MOVED, OLD, NEW = "DAA", "Information Technology", "Energy"  # DAA joins DAF and DAL on S
S = pd.Timestamp("2016-06-01")


@pytest.fixture(scope="module")
def sector_db(tmp_path_factory, demo_universe):
    """A demo store with a sector history moving DAA from IT to Energy on S."""
    from sentinel.data.demo import install_demo
    from sentinel.data.importer import import_files
    from sentinel.db import Store

    folder = tmp_path_factory.mktemp("sectors")
    store = Store(f"sqlite:///{folder / 'base.db'}")
    install_demo(store, demo_universe)
    history = folder / "history.csv"
    history.write_text(f"symbol,sector,from,to\n{MOVED},{NEW},{S.date()},\n")
    import_files(store, [history])
    store.engine.dispose()
    return folder / "base.db"


def test_the_sector_feature_reads_the_sector_in_force_on_each_day(sector_db):
    from sentinel.db import Store
    from sentinel.ml_features import sector_relative_strength_series

    store = Store(f"sqlite:///{sector_db}")
    full = store.view(None)
    book = FeatureBook(store)
    static = {s.symbol: s.sector for s in full.market.securities()}
    assert static[MOVED] == OLD and full.market.sectors_as_of(S.date())[MOVED] == NEW
    closes = full.market.get_price_panel(None).pivot(index="date", columns="symbol",
                                                     values="close")  # fmt: skip
    old = sector_relative_strength_series(closes, static, book.market)
    new = sector_relative_strength_series(closes, {**static, MOVED: NEW}, book.market)
    served = pd.DataFrame({s: book.matrix(s, full)["sector_relative_strength"]
                           for s in ("DAA", "DAF", "DAG")})  # fmt: skip
    before = served.index < S
    # before S: the old sector, exactly (DAA and DAG make IT, DAF is in Energy without DAA)
    pd.testing.assert_frame_equal(served[before], old.loc[before, served.columns],
                                  check_names=False, check_freq=False)  # fmt: skip
    # once the whole 20-session window is after S: DAA and DAF read Energy with DAA in it
    settled = served.index[served.index >= S][20:]
    for sym in ("DAA", "DAF"):
        np.testing.assert_allclose(served.loc[settled, sym], new.loc[settled, sym], rtol=1e-9)
        assert not np.allclose(served.loc[settled, sym], old.loc[settled, sym])
    store.engine.dispose()


@settings(max_examples=8, deadline=None)
@given(t_index=st.integers(60, 700), later=st.integers(1, 120), symbol=st.sampled_from(
    ["DAB", "DAC", "DAF", "DAG"]), sector=st.sampled_from([OLD, NEW, "Financials", "Utilities"]),
    ends=st.booleans())  # fmt: skip
def test_a_sector_change_dated_after_t_changes_no_feature_up_to_t(
    sector_db, t_index, later, symbol, sector, ends
):
    from sentinel.data.importer import import_files
    from sentinel.db import Store

    base = Store(f"sqlite:///{sector_db}")
    t = base.market.trading_days()[t_index]
    start = t + timedelta(days=later)
    with TemporaryDirectory() as folder:
        path = Path(folder) / "changed.db"
        shutil.copy(sector_db, path)
        changed = Store(f"sqlite:///{path}")
        change = Path(folder) / "change.csv"
        end = (start + timedelta(days=90)).isoformat() if ends else ""
        change.write_text(f"symbol,sector,from,to\n{symbol},{sector},{start},{end}\n")
        import_files(changed, [change])
        before, after = FeatureBook(base), FeatureBook(changed)
        for sym in before.symbols:
            pd.testing.assert_frame_equal(after.matrix(sym, changed.view(t)),
                                          before.matrix(sym, base.view(t)))  # fmt: skip
        changed.engine.dispose()
    base.engine.dispose()
