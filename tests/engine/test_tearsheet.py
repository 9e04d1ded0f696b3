"""Tear-sheet statistics against independent computations (numpy, pandas, a by-hand ledger), and
the look-ahead rule: a figure dated D does not move when data after D changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as hs

from engine.portfolio import Fill, Portfolio
from engine.tearsheet import stats as st
from engine.tearsheet.labels import (
    COSTS_WARNING,
    METRIC_LABELS,
    TURNOVER_WARNING,
    figure_warnings,
    format_value,
    metric_rows,
)

DAYS = 300


def _returns(seed: int, n: int = DAYS, start: str = "2019-01-01") -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(0.0004, 0.01, n), index=pd.bdate_range(start, periods=n))


@pytest.fixture(scope="module")
def pair() -> tuple[pd.Series, pd.Series]:
    bench = _returns(2)
    noise = _returns(3) * 0.5
    return 0.0002 + 0.8 * bench + noise, bench


def test_alpha_beta_match_a_least_squares_fit(pair):
    r, b = pair
    slope, intercept = np.polyfit(b.to_numpy(), r.to_numpy(), 1)
    got = st.relative_figures(r, b)
    assert got["beta"] == pytest.approx(slope, rel=1e-9)
    assert got["alpha"] == pytest.approx((1 + intercept) ** 252 - 1, rel=1e-9)


def test_information_ratio_and_tracking_error_from_the_active_return(pair):
    r, b = pair
    active = (r - b).to_numpy()
    got = st.relative_figures(r, b)
    assert got["tracking_error"] == pytest.approx(active.std(ddof=1) * np.sqrt(252), rel=1e-9)
    expected = active.mean() / active.std(ddof=1) * np.sqrt(252)
    assert got["information_ratio"] == pytest.approx(expected, rel=1e-9)


def test_relative_figures_use_only_common_days(pair):
    r, b = pair
    got = st.relative_figures(r, b.iloc[50:])
    assert got["beta"] == pytest.approx(st.relative_figures(r.iloc[50:], b.iloc[50:])["beta"])
    assert all(np.isnan(v) for v in st.relative_figures(r.iloc[:1], b.iloc[:1]).values())


def test_monthly_and_yearly_tables_equal_pandas_resampling(pair):
    r, _ = pair
    table = st.monthly_returns(r)
    by_month = (1 + r).resample("ME").prod() - 1
    for stamp, value in by_month.items():
        assert table.loc[stamp.year, stamp.month] == pytest.approx(value, rel=1e-12)
    assert table.notna().sum().sum() == len(by_month)
    yearly = st.yearly_returns(r)
    by_year = (1 + r).resample("YE").prod() - 1
    assert yearly.to_numpy() == pytest.approx(by_year.to_numpy(), rel=1e-12)


def test_rolling_figures_equal_the_last_window_by_hand(pair):
    r, b = pair
    w = st.ROLLING_WINDOW
    rolling = st.rolling_figures(r, b)
    last_r, last_b = r.iloc[-w:].to_numpy(), b.iloc[-w:].to_numpy()
    assert rolling["sharpe"].iloc[-1] == pytest.approx(
        last_r.mean() / last_r.std(ddof=1) * np.sqrt(252), rel=1e-9
    )
    assert rolling["volatility"].iloc[-1] == pytest.approx(last_r.std(ddof=1) * np.sqrt(252))
    assert rolling["beta"].iloc[-1] == pytest.approx(np.polyfit(last_b, last_r, 1)[0], rel=1e-9)
    assert rolling.iloc[: w - 1].isna().all().all() and rolling.iloc[w - 1].notna().all()


def test_drawdown_periods_by_hand():
    index = pd.bdate_range("2020-01-01", periods=8)
    equity = pd.Series([100, 110, 120, 96, 100, 130, 117, 125], index=index, dtype=float)
    table = st.drawdown_periods(equity)
    assert table["depth"].tolist() == pytest.approx([-0.2, -0.1])
    first, second = table.iloc[0], table.iloc[1]
    assert (first.peak, first.trough, first.recovery) == (index[2], index[3], index[5])
    assert first.days == 3
    assert (second.peak, second.trough) == (index[5], index[6]) and pd.isna(second.recovery)
    assert second.days == 2
    assert st.drawdown_periods(equity.cummax()).empty


def _trades(rows):
    cols = ["date", "symbol", "side", "quantity", "price", "value", "commission", "slippage"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_round_trips_match_first_in_first_out():
    trades = _trades(
        [
            ("2020-01-01", "A", "buy", 10, 100.0, 1000.0, 1.0, 0.5),
            ("2020-01-06", "A", "buy", 10, 110.0, 1100.0, 2.0, 0.5),
            ("2020-01-10", "A", "sell", 15, 120.0, 1800.0, 3.0, 0.5),
            ("2020-01-10", "B", "buy", 4, 50.0, 200.0, 1.0, 0.0),
        ]
    )
    trips = st.round_trips(trades)
    assert trips["symbol"].tolist() == ["A", "A"]  # B is still open
    assert trips["quantity"].tolist() == [10, 5]
    assert trips["holding_days"].tolist() == [9, 4]
    # 10 from the first lot: 10 * 20 - its buy commission 1 - 10/15 of the sell commission 3
    assert trips["pnl"].tolist() == pytest.approx([200 - 1 - 2, 5 * 10 - 1 - 1])
    assert trips["return"].tolist() == pytest.approx([0.2, 120 / 110 - 1])


def _ledger() -> tuple[Portfolio, pd.Series]:
    """A by-hand ledger through the engine's Portfolio: the record the report reads."""
    book = Portfolio(cash=10_000.0)
    days = list(pd.bdate_range("2020-01-01", periods=6).date)
    prices = [{"A": 100, "B": 50}, {"A": 104, "B": 49}, {"A": 101, "B": 52},
              {"A": 99, "B": 55}, {"A": 103, "B": 54}, {"A": 108, "B": 53}]  # fmt: skip
    fills = {  # order id, day, symbol, signed quantity, price, commission, slippage cost
        0: [Fill("o1", days[0], "A", 40, 100.2, 2.0, 8.0),
            Fill("o2", days[0], "B", 60, 50.1, 1.5, 6.0)],
        2: [Fill("o3", days[2], "A", -20, 100.8, 1.0, 4.0)],
        4: [Fill("o4", days[4], "B", -60, 53.9, 1.6, 6.0),
            Fill("o5", days[4], "A", 10, 103.1, 1.0, 1.0)],
    }  # fmt: skip
    for i, day in enumerate(days):
        for fill in fills.get(i, []):
            book.apply(fill)
        book.mark(day, prices[i])
    return book, book.equity_frame()["equity"]


def test_pnl_by_symbol_adds_up_to_the_profit():
    book, equity = _ledger()
    pnl = st.pnl_by_symbol(book.trades_frame(), book.weights_frame(), equity)
    assert pnl.sum() == pytest.approx(equity.iloc[-1] - 10_000.0, abs=1e-6)
    # B was closed: sale - purchase - both commissions
    assert pnl["B"] == pytest.approx(60 * 53.9 - 60 * 50.1 - 1.5 - 1.6)
    sectors = st.pnl_by_sector(pnl, {"A": "Tech"})
    assert sectors.to_dict() == pytest.approx({"Tech": pnl["A"], "unknown": pnl["B"]})


def test_gross_equity_adds_back_the_costs_paid_so_far():
    book, equity = _ledger()
    gross = st.gross_equity(equity, book.trades_frame())
    costs = [2 + 8 + 1.5 + 6, 0, 1 + 4, 0, 1.6 + 6 + 1 + 1, 0]
    assert (gross - equity).to_numpy() == pytest.approx(np.cumsum(costs))


def test_exposure_and_cash_fractions():
    book, equity = _ledger()
    frame = st.exposure_and_cash(book.weights_frame(), equity, book.equity_frame()["cash"])
    assert (frame["invested"] + frame["cash"]).to_numpy() == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(cut=hs.integers(70, 140), seed=hs.integers(0, 10_000), scale=hs.floats(0.2, 5.0))
@example(cut=70, seed=115, scale=1.0)  # once gave the recovery column another datetime unit
def test_figures_up_to_a_day_ignore_later_data(cut, seed, scale):
    r, b = _returns(seed, 160), _returns(seed + 1, 160)
    later = r.copy()
    later.iloc[cut:] = later.iloc[cut:] * scale - 0.01
    day = r.index[cut - 1]
    before, after = st.rolling_figures(r, b), st.rolling_figures(later, b)
    pd.testing.assert_frame_equal(before.loc[:day], after.loc[:day])
    equity, equity2 = 100 * (1 + r).cumprod(), 100 * (1 + later).cumprod()
    # drawdowns that recovered by the day are the same whatever follows
    done = st.drawdown_periods(equity, top=100)
    done = done[done["recovery"] <= day]
    done2 = st.drawdown_periods(equity2, top=100)
    pd.testing.assert_frame_equal(
        done.sort_values("peak").reset_index(drop=True),
        done2[done2["recovery"] <= day].sort_values("peak").reset_index(drop=True),
    )
    months_before = st.monthly_returns(r.loc[:day]).iloc[:-1]  # whole months before the day
    pd.testing.assert_frame_equal(months_before, st.monthly_returns(later).loc[months_before.index])


def test_round_trips_closed_by_a_day_ignore_later_trades():
    trades = _trades(
        [
            ("2020-01-01", "A", "buy", 10, 100.0, 1000.0, 1.0, 0.0),
            ("2020-01-08", "A", "sell", 4, 105.0, 420.0, 1.0, 0.0),
        ]
    )
    later = pd.concat(
        [trades, _trades([("2020-01-20", "A", "sell", 6, 90.0, 540.0, 1.0, 0.0),
                          ("2020-01-21", "A", "buy", 3, 91.0, 273.0, 1.0, 0.0)])],
        ignore_index=True,
    )  # fmt: skip
    first, second = st.round_trips(trades), st.round_trips(later)
    pd.testing.assert_frame_equal(first, second.iloc[: len(first)])


def test_every_metric_key_has_a_label_and_unit():
    from engine.metrics import METRIC_KEYS

    assert set(METRIC_KEYS) <= set(METRIC_LABELS)
    labels = [label for label, _, _ in METRIC_LABELS.values()]
    assert len(labels) == len(set(labels)) and not any("_" in label for label in labels)


def test_format_value_units():
    assert format_value(0.1234, "percent") == "12.34 %"
    assert format_value(107174.938, "money") == "107,174.94"
    assert format_value(42.0, "count") == "42"
    assert format_value(1.5, "years") == "1.50 years"
    assert format_value(float("nan"), "ratio") == "n/a" and format_value(None, "ratio") == "n/a"
    assert format_value(True, "flag") == "yes" and format_value(False, "flag") == "no"


def test_metric_rows_group_known_keys_and_keep_unknown_ones():
    rows = dict(metric_rows({"sharpe_ratio": 1.2, "total_costs": 5.0, "my_new_key": 2.0,
                             "details": {"a": 1}}))  # fmt: skip
    assert rows["Risk"] == [("Sharpe ratio (risk-free 0)", "1.20", "sharpe_ratio")]
    assert rows["Other"] == [("My new key", "2.000", "my_new_key")]
    assert "details" not in str(rows)


def test_warnings_above_the_thresholds_only():
    calm = {"turnover": TURNOVER_WARNING * 0.9, "total_costs": COSTS_WARNING * 0.9 * 1000}
    assert figure_warnings(calm, 1000.0) == []
    wild = {"turnover": 20.74, "total_costs": 107_174.938}
    found = figure_warnings(wild, 1_000_000.0)
    assert len(found) == 2
    assert "2074%" in found[0] and "10.7% of the starting capital" in found[1]
    assert figure_warnings({"turnover": None, "total_costs": None}, None) == []


def test_cost_table_by_hand():
    from engine.tearsheet import cost_table

    book, equity = _ledger()
    rows = dict(cost_table(equity, book.trades_frame(), 10_000.0).rows)
    total = 2 + 8 + 1.5 + 6 + 1 + 4 + 1.6 + 6 + 1 + 1
    traded = 40 * 100.2 + 60 * 50.1 + 20 * 100.8 + 60 * 53.9 + 10 * 103.1
    assert rows["Total costs"] == f"{total:,.2f}"
    assert rows["Commission"] == f"{2 + 1.5 + 1 + 1.6 + 1:,.2f}"
    assert rows["Total costs / starting capital"] == f"{total / 10_000 * 100:,.2f} %"
    assert rows["Costs per traded value"] == f"{total / traded * 1e4:,.1f} bps"
    before = (equity.iloc[-1] + total) / 10_000 - 1
    assert rows["Total return before costs"] == f"{before * 100:,.2f} %"


def test_set_template_gives_the_figure_update_layout_gives():
    """The template assigned without validation is the validated one: same figure JSON (keys in
    the same order) as ``update_layout(template=...)``, for a plain figure and for subplots, and
    each figure owns its copy (a change to one leaves the next one unchanged)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from engine.tearsheet import figures

    def plain() -> go.Figure:
        return go.Figure(go.Scatter(x=[1, 2, 3], y=[0.5, 0.25, 1.0], name="s"))

    def panels() -> go.Figure:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
        fig.add_trace(go.Bar(x=[1, 2], y=[3, 4]), row=2, col=1)
        return fig

    for build in (plain, panels):
        validated = build().update_layout(template=figures.TEMPLATE, height=300)
        fast = figures.set_template(build()).update_layout(height=300)
        assert fast.to_json() == validated.to_json()
    first = figures.set_template(plain())
    first.layout.template.layout.font.size = 99
    second = figures.set_template(plain())
    assert second.to_json() == plain().update_layout(template=figures.TEMPLATE).to_json()
    assert first.layout.template.layout.font.size == 99
