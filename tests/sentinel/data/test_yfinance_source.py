"""The yfinance provider: clear lines when the package or the network is missing, and the
parsing of yfinance-shaped frames (a fake ``download`` stands in for Yahoo)."""

from __future__ import annotations

import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest

from sentinel.data import yfinance_source as yf
from sentinel.db import Store
from sentinel.errors import SentinelError

FIELDS = ["Adj Close", "Close", "High", "Low", "Open", "Volume"]


def _yahoo_frame(tickers, days, *, ticker_first=False, seed=0) -> pd.DataFrame:
    """What ``yfinance.download(..., group_by='column')`` returns (columns Price x Ticker)."""
    rng = np.random.default_rng(seed)
    data = {}
    for t in tickers:
        close = 100 + rng.normal(0, 1, len(days)).cumsum()
        volume = rng.integers(1_000, 5_000, len(days))
        row = {"Open": close - 0.2, "High": close + 1, "Low": close - 1, "Close": close,
               "Adj Close": close * 0.99, "Volume": volume}  # fmt: skip
        for f in FIELDS:
            data[(t, f) if ticker_first else (f, t)] = row[f].astype(float)
    frame = pd.DataFrame(data, index=pd.DatetimeIndex(days, name="Date"))
    names = ["Ticker", "Price"] if ticker_first else ["Price", "Ticker"]
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=names)
    return frame


class FakeDownload:
    """Records its calls and answers like ``yfinance.download`` for business days."""

    def __init__(self, until: str | None = None, **frame_kw):
        self.calls: list[tuple[list[str], dict]] = []
        self.until = until  # the last day "Yahoo" has
        self.frame_kw = frame_kw

    def __call__(self, tickers, **kwargs):
        self.calls.append((tickers, kwargs))
        days = pd.bdate_range(kwargs["start"], kwargs["end"], inclusive="left")
        days = days[days <= pd.Timestamp(self.until)] if self.until else days
        return _yahoo_frame(tickers, days, **self.frame_kw)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` raise
    with pytest.raises(yf.ProviderError) as exc:
        yf.fetch_bars(["AAA"], date(2024, 1, 2), date(2024, 1, 5))
    assert str(exc.value) == (
        "the yfinance provider needs the optional package: pip install 'sentinel[yfinance]'"
    )


@pytest.mark.parametrize("ticker_first", [False, True])
def test_parses_both_column_layouts_and_maps_share_classes(ticker_first):
    fake = FakeDownload(ticker_first=ticker_first)
    bars = yf.fetch_bars(["AAA", "BRK.B"], date(2024, 1, 1), date(2024, 1, 5), download=fake)
    tickers, kwargs = fake.calls[0]
    assert tickers == ["AAA", "BRK-B"]
    assert kwargs["start"] == "2024-01-01" and kwargs["end"] == "2024-01-06"  # end exclusive
    assert kwargs["auto_adjust"] is False
    assert list(bars.columns) == yf.COLUMNS
    assert set(bars["symbol"]) == {"AAA", "BRK.B"}
    assert list(bars.loc[bars.symbol == "AAA", "date"]) == [
        "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"
    ]  # fmt: skip
    frame = fake(["AAA", "BRK-B"], start="2024-01-01", end="2024-01-06")  # the same answer
    got = bars[bars.symbol == "BRK.B"].reset_index(drop=True)
    col = ("BRK-B", "Close") if ticker_first else ("Close", "BRK-B")
    np.testing.assert_allclose(got["close"], frame[col].to_numpy())


def test_days_a_ticker_did_not_trade_are_dropped_and_flat_frames_read():
    days = pd.bdate_range("2024-03-04", periods=4)
    frame = _yahoo_frame(["AAA", "BBB"], days)
    frame.loc[days[1], pd.IndexSlice[:, "BBB"]] = np.nan
    bars = yf.bars_from_download(frame, {"AAA": "AAA", "BBB": "BBB"})
    assert (bars.symbol == "AAA").sum() == 4 and (bars.symbol == "BBB").sum() == 3
    assert "2024-03-05" not in set(bars.loc[bars.symbol == "BBB", "date"])
    flat = frame.xs("AAA", axis=1, level="Ticker").drop(columns="Adj Close")
    one = yf.bars_from_download(flat, {"AAA": "AAA"})
    assert len(one) == 4 and "adj_close" not in one.columns
    tz = flat.tz_localize("America/New_York")
    assert list(yf.bars_from_download(tz, {"AAA": "AAA"}).date) == list(one.date)


def test_no_network_and_no_data_are_clear_lines():
    def offline(tickers, **kwargs):
        raise ConnectionError("Failed to resolve host")

    with pytest.raises(yf.ProviderError, match="offline or query1.finance.yahoo.com unreachable"):
        yf.fetch_bars(["AAA"], date(2024, 1, 1), date(2024, 1, 5), download=offline,
                      reachable=lambda: "[Errno -3] Temporary failure")  # fmt: skip

    def empty(tickers, **kwargs):
        return pd.DataFrame()

    with pytest.raises(yf.ProviderError, match="returned no bars: offline"):
        yf.fetch_bars(["AAA"], date(2024, 1, 1), date(2024, 1, 5), download=empty,
                      reachable=lambda: "timed out")  # fmt: skip
    with pytest.raises(yf.ProviderError, match="no bars for AAA from 2024-01-01 to 2024-01-05"):
        yf.fetch_bars(["AAA"], date(2024, 1, 1), date(2024, 1, 5), download=empty,
                      reachable=lambda: None)  # fmt: skip


def test_live_sync_imports_the_new_days(tmp_path, monkeypatch):
    from engine.config import RunConfig
    from engine.live import sync_prices
    from sentinel.data.demo import generate_demo_universe, install_demo

    store = Store(f"sqlite:///{tmp_path / 'yf.db'}")
    install_demo(store, generate_demo_universe(3, 3, "2016-01-01", "2016-06-30"))
    last = store.market.price_span()[1]
    symbols = [s.symbol for s in store.market.securities() if s.universe_to is None]
    fake = FakeDownload(until="2016-07-15")
    monkeypatch.setattr(yf, "load_download", lambda: fake)
    cfg = RunConfig.model_validate(
        {"start": "2016-01-04", "end": "2016-06-30", "benchmark": "MARKET",
         "live": {"provider": "yfinance"}}
    )  # fmt: skip
    line = sync_prices(cfg, store)
    assert line.startswith("yfinance: synced") and "(0 bad rows skipped)" in line
    assert sorted(fake.calls[0][0]) == sorted([*symbols, "MARKET"])
    new_last = store.market.price_span()[1]
    assert new_last == date(2016, 7, 15) > last
    assert store.market.get_benchmark("MARKET").index[-1].date() == new_last
    before = store.market.get_prices(symbols[0], end_date=last)
    assert before.index[-1].date() == last  # earlier rows untouched
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "yfinance", None)
    with pytest.raises(SentinelError, match=r"pip install 'sentinel\[yfinance\]'"):
        sync_prices(cfg, store)
