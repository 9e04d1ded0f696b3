"""Every read of the store: as-of semantics, the simulation bound, universe membership.

Runs on SQLite and, when CI provides one, on PostgreSQL (the ``any_store`` fixture).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from sentinel.data.demo import install_demo
from sentinel.db import BacktestRun, ModelRecord, ScoreRecord, Store
from sentinel.errors import LookAheadError, NotFoundError
from sentinel.timeutil import end_of_day_ts


@pytest.fixture
def loaded(any_store, demo_universe):
    install_demo(any_store, demo_universe)
    return any_store


def _sym(demo_universe, i=0) -> str:
    return demo_universe.securities["symbol"].iloc[i]


def test_get_prices_last_days_up_to_end_date(loaded, demo_universe):
    sym = _sym(demo_universe)
    df = loaded.market.get_prices(sym, days=20, end_date=date(2016, 6, 15))
    src = demo_universe.prices[demo_universe.prices.symbol == sym].set_index("date")
    expected = src.loc[:"2016-06-15"].tail(20)
    assert len(df) == 20
    assert df.index[-1] == pd.Timestamp("2016-06-15")
    assert list(df.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert (df.index == expected.index).all()
    assert df["close"].to_numpy() == pytest.approx(expected["close"].to_numpy())
    assert df["adj_close"].isna().all()  # the demo has no adj_close: NULL reads as NaN


def test_get_prices_start_date_and_unknown_symbol(loaded, demo_universe):
    sym = _sym(demo_universe)
    df = loaded.market.get_prices(sym, start_date=date(2016, 1, 1), end_date=date(2016, 1, 31))
    assert df.index.min() >= pd.Timestamp("2016-01-01")
    assert df.index.max() <= pd.Timestamp("2016-01-31")
    assert len(df) == 19  # XNYS sessions of January 2016 (closed Jan 1 and Jan 18, MLK day)
    assert loaded.market.get_prices("NOPE", days=5).empty


def test_store_needs_a_url_and_views_share_one_database(any_store):
    with pytest.raises(TypeError, match="database URL or an engine"):
        Store()
    d = date(2016, 3, 1)
    view = any_store.view(d)
    assert view.db is any_store.db and view.engine is any_store.engine
    assert view.market is view.market and view.market is not any_store.market
    assert (view.market.day, view.signals.day, any_store.market.day) == (d, d, None)
    assert view.records.db is any_store.db


def test_simulation_view_bounds_and_raises(loaded, demo_universe):
    sym = _sym(demo_universe)
    loaded = loaded.view(date(2016, 3, 1))
    assert loaded.market.get_prices(sym).index.max() == pd.Timestamp("2016-03-01")
    with pytest.raises(LookAheadError) as exc:
        loaded.market.get_prices(sym, days=5, end_date=date(2016, 3, 2))
    msg = str(exc.value)
    assert "prices" in msg and sym in msg and "2016-03-01" in msg and "2016-03-02" in msg
    assert exc.value.simulation_date == date(2016, 3, 1)
    loaded = loaded.view(None)
    assert loaded.market.get_prices(sym, days=1, end_date=date(2016, 3, 2)).index[
        0
    ] == pd.Timestamp("2016-03-02")


def test_price_panel_counts_market_days(loaded, demo_universe):
    panel = loaded.market.get_price_panel(days=10, end_date=date(2016, 6, 15))
    assert panel["date"].nunique() == 10
    assert panel["date"].max() == pd.Timestamp("2016-06-15")
    members = set(loaded.market.universe_symbols(date(2016, 6, 15)))
    assert set(panel["symbol"]) <= set(demo_universe.securities.symbol)
    assert members <= set(panel["symbol"])
    two = loaded.market.get_price_panel([_sym(demo_universe, 0), _sym(demo_universe, 1)], days=5)
    assert sorted(two["symbol"].unique()) == sorted(
        [_sym(demo_universe, 0), _sym(demo_universe, 1)]
    )
    wide = loaded.market.get_close_panel(days=5, end_date=date(2016, 6, 15))
    assert wide.shape[0] == 5 and wide.index.max() == pd.Timestamp("2016-06-15")
    loaded = loaded.view(date(2016, 6, 15))
    with pytest.raises(LookAheadError, match="prices"):
        loaded.market.get_price_panel(days=5, end_date=date(2016, 6, 16))
    assert loaded.market.get_price_panel(days=3)["date"].max() == pd.Timestamp("2016-06-15")


def test_trading_days_are_bounded(loaded):
    loaded = loaded.view(date(2015, 1, 9))
    days = loaded.market.trading_days()
    assert days[0] == date(2015, 1, 2) and days[-1] == date(2015, 1, 9)  # XNYS: Jan 1 closed
    with pytest.raises(LookAheadError):
        loaded.market.trading_days(end=date(2015, 2, 1))


def test_universe_as_of_follows_listing_dates(loaded, demo_universe):
    secs = demo_universe.securities
    late = secs[secs.universe_from > secs.universe_from.min()].iloc[0]
    before = (late.universe_from - pd.Timedelta(days=1)).date()
    assert late.symbol not in loaded.market.universe_symbols(before)
    assert late.symbol in loaded.market.universe_symbols(late.universe_from.date())
    gone = secs[secs.universe_to.notna()].iloc[0]
    assert gone.symbol in loaded.market.universe_symbols(gone.universe_to.date())
    assert gone.symbol not in loaded.market.universe_symbols(
        gone.universe_to.date() + pd.Timedelta(days=1)
    )
    sector = secs.sector.iloc[0]
    in_sector = loaded.market.universe_symbols(date(2017, 12, 1), sector=sector)
    assert in_sector and all(loaded.market.get_security(s).sector == sector for s in in_sector)
    loaded = loaded.view(date(2016, 1, 4))
    with pytest.raises(LookAheadError, match="securities"):
        loaded.market.universe(date(2016, 1, 5))
    with pytest.raises(NotFoundError):
        loaded.market.get_security("NOPE")


def test_scores_as_of_calculated_at(any_store):
    rec = [
        ScoreRecord("AAA", date(2016, 1, d), end_of_day_ts(date(2016, 1, d)), 0.1 * d, {"d1": d})
        for d in (4, 5, 6)
    ]
    any_store.signals.save_scores(rec)
    any_store.signals.save_scores(rec)  # idempotent
    assert any_store.db.count("wavelet_scores") == 3
    assert any_store.signals.get_score("AAA").score == pytest.approx(0.6)
    got = any_store.signals.get_score("AAA", as_of_date=end_of_day_ts(date(2016, 1, 5)))
    assert got.score == pytest.approx(0.5) and got.components == {"d1": 5}
    assert any_store.signals.get_score("AAA", as_of_date=date(2016, 1, 5)).as_of == date(2016, 1, 5)
    assert any_store.signals.get_score("AAA", as_of_date=date(2016, 1, 3)) is None
    # A timestamp in the middle of the 5th sees only the 4th (the 5th is known at its end).
    mid = datetime(2016, 1, 5, 12).timestamp()
    assert any_store.signals.get_score("AAA", as_of_date=mid).as_of == date(2016, 1, 4)
    any_store.signals.save_scores(
        [ScoreRecord("BBB", date(2016, 1, 4), end_of_day_ts("2016-01-04"), 0.9, {})]
    )
    many = any_store.signals.get_scores(["AAA", "BBB", "CCC"], as_of_date=date(2016, 1, 4))
    assert set(many) == {"AAA", "BBB"} and many["AAA"].score == pytest.approx(0.4)
    any_store = any_store.view(date(2016, 1, 5))
    assert any_store.signals.get_score("AAA").score == pytest.approx(0.5)
    with pytest.raises(LookAheadError, match="wavelet_scores"):
        any_store.signals.get_score("AAA", as_of_date=date(2016, 1, 6))


def test_ml_prediction_as_of(any_store):
    rows = [
        {"symbol": "AAA", "date": date(2016, 1, d), "predicted_return": 0.01 * d,
         "blended_score": 0.5, "blend_ratio": 0.3}
        for d in (4, 5, 6)
    ]  # fmt: skip
    any_store.signals.upsert_ml_predictions(rows)
    any_store.signals.upsert_ml_predictions(rows)
    assert any_store.db.count("ml_predictions") == 3
    p = any_store.signals.get_ml_prediction_as_of("AAA", end_of_day_ts("2016-01-05"))
    assert p.date == date(2016, 1, 5) and p.predicted_at == end_of_day_ts("2016-01-05")
    assert any_store.signals.get_ml_prediction_as_of(
        "AAA", end_of_day_ts("2016-01-05") - 1
    ).date == date(2016, 1, 4)
    assert any_store.signals.get_ml_prediction_as_of("AAA", date(2016, 1, 1)) is None
    assert len(any_store.signals.get_ml_predictions("AAA", end=date(2016, 1, 5))) == 2
    any_store = any_store.view(date(2016, 1, 5))
    with pytest.raises(LookAheadError, match="ml_predictions"):
        any_store.signals.get_ml_prediction_as_of("AAA", end_of_day_ts("2016-01-06"))


def test_regime_states_idempotent_and_as_of(any_store):
    any_store.signals.upsert_regime_state("AAA", date(2016, 1, 4), 2, "bull", 0.8)
    any_store.signals.upsert_regime_state("AAA", date(2016, 1, 4), 0, "bear", 0.7)
    any_store.signals.upsert_regime_state("AAA", date(2016, 1, 6), 1, "sideways", 0.6)
    assert any_store.db.count("regime_states") == 2
    r = any_store.signals.get_regime_state("AAA", date(2016, 1, 5))
    assert (r.regime, r.regime_name, r.confidence) == (0, "bear", pytest.approx(0.7))
    assert any_store.signals.existing_regime_dates("AAA") == {date(2016, 1, 4), date(2016, 1, 6)}
    any_store = any_store.view(date(2016, 1, 5))
    assert any_store.signals.get_regime_state("AAA").regime_name == "bear"
    with pytest.raises(LookAheadError, match="regime_states"):
        any_store.signals.get_regime_state("AAA", date(2016, 1, 6))


def test_training_samples_known_by(any_store):
    rows = [
        {"symbol": "AAA", "date": date(2016, 1, d), "horizon_days": 14,
         "features": [float(d)] * 20, "label": 0.01, "label_known_at": date(2016, 1, d + 14)}
        for d in (1, 8, 15)
    ]  # fmt: skip
    any_store.signals.upsert_training_samples(rows)
    any_store.signals.upsert_training_samples(rows)
    assert any_store.db.count("training_samples") == 3
    known = any_store.signals.get_training_samples("AAA", known_by=date(2016, 1, 22))
    assert list(known["date"].dt.day) == [1, 8]
    assert known["features"].iloc[1].tolist() == [8.0] * 20
    any_store = any_store.view(date(2016, 1, 20))
    assert len(any_store.signals.get_training_samples("AAA")) == 1
    with pytest.raises(LookAheadError, match="training_samples"):
        any_store.signals.get_training_samples("AAA", known_by=date(2016, 2, 1))


def test_benchmark_and_sentiment_reads(loaded):
    assert loaded.market.market_symbol() == "MARKET"
    b = loaded.market.get_benchmark(days=5, end_date=date(2016, 6, 15))
    assert len(b) == 5 and b.index[-1] == pd.Timestamp("2016-06-15")
    loaded.db.upsert_tuples(
        "sentiment", ["symbol", "date"], ["symbol", "date", "score"],
        [("AAA", "2016-01-04" if loaded.db.dialect == "sqlite" else date(2016, 1, 4), 0.5)],
    )  # fmt: skip
    assert loaded.market.get_sentiment("AAA").tolist() == [0.5]
    assert loaded.market.get_sentiment("AAA", end_date=date(2016, 1, 3)).empty
    loaded = loaded.view(date(2016, 1, 3))
    assert loaded.market.get_sentiment("AAA").empty
    with pytest.raises(LookAheadError, match="benchmark_prices"):
        loaded.market.get_benchmark(end_date=date(2016, 1, 4))
    with pytest.raises(LookAheadError, match="sentiment"):
        loaded.market.get_sentiment("AAA", end_date=date(2016, 1, 4))


def test_settings_models_and_runs_roundtrip(any_store):
    any_store.records.set_settings({"ml_wavelet_blend_ratio": 0.4, "ml_enabled": False})
    any_store.records.set_settings({"ml_wavelet_blend_ratio": 0.5})
    assert any_store.records.get_stored_settings() == {
        "ml_wavelet_blend_ratio": 0.5,
        "ml_enabled": False,
    }
    any_store.records.upsert_model_record(
        ModelRecord(symbol="AAA", trained_at=datetime(2016, 1, 3, tzinfo=UTC), training_samples=120,
                    metrics={"validation_rmse": 0.02})
    )  # fmt: skip
    assert any_store.records.get_model_record("AAA").metrics == {"validation_rmse": 0.02}
    assert [m.symbol for m in any_store.records.get_model_records()] == ["AAA"]
    run_id = any_store.records.save_backtest_run(
        BacktestRun(name="t", config_hash="abc", created_at=datetime(2016, 1, 1, tzinfo=UTC),
                    config={"a": 1}, metrics={"sharpe": 1.0}, trades_csv="x", equity_csv="y")
    )  # fmt: skip
    assert any_store.records.get_backtest_run(run_id).metrics == {"sharpe": 1.0}
    with pytest.raises(NotFoundError):
        any_store.records.get_backtest_run(run_id + 100)
    with pytest.raises(NotFoundError):
        any_store.db.count("no_such_table")
