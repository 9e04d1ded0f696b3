"""Named features: the default 20 unchanged, plug-ins by name, every registered one causal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import RunConfig, load_config
from sentinel import feature_registry as fr
from sentinel import ml_features as mf
from sentinel.errors import ConfigError, LookAheadError
from sentinel.ml.dataset import FeatureBook

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "features"
PLUGIN = "overnight_gap:overnight_gap"


@pytest.fixture(autouse=True)
def _example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))


def _bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    volume = rng.integers(1_000, 100_000, n).astype(float)
    index = pd.bdate_range("2018-01-01", periods=n, name="date")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def test_default_is_the_twenty_unchanged():
    assert fr.expand([fr.DEFAULT]) == mf.FEATURE_NAMES
    prices = _bars(300, 1)
    matrix = mf.compute_feature_matrix(prices)
    assert fr.select_features(matrix, prices, mf.FEATURE_NAMES) is matrix
    assert RunConfig.model_validate({"start": "2019-01-01", "end": "2019-02-01"}).ml.features == (
        "default",
    )


def test_plugins_add_columns_in_order():
    names = fr.expand([fr.DEFAULT, "return_120d", PLUGIN])
    assert names == [*mf.FEATURE_NAMES, "return_120d", PLUGIN]
    prices = _bars(300, 2)
    frame = fr.feature_frame(prices, names)
    assert list(frame.columns) == names and np.isfinite(frame.to_numpy()).all()
    np.testing.assert_array_equal(
        frame[mf.FEATURE_NAMES].to_numpy(), mf.compute_feature_matrix(prices).to_numpy()
    )
    gap = prices["open"] / prices["close"].shift(1) - 1
    np.testing.assert_allclose(frame[PLUGIN].iloc[10], gap.iloc[6:11].mean())
    assert frame[PLUGIN].iloc[3] == 0.0  # warm-up takes the default
    picked = fr.feature_frame(prices, ["rsi_14", "drawdown_252d"])
    assert (
        list(picked.columns) == ["rsi_14", "drawdown_252d"] and (picked["drawdown_252d"] <= 0).all()
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (["default", "nope"], "unknown feature 'nope'; available: default"),
        (["default", "rsi_14"], "feature 'rsi_14' is listed twice"),
        ([], "must start with 'default'"),
        (["rsi_14", "default"], "must start with 'default'"),
        (["default", "no_such_mod_q:f"], "cannot import module 'no_such_mod_q'"),
        (["default", "overnight_gap:missing"], "has no 'missing'"),
        (["default", "overnight_gap:pd"], "not a function of the bars"),
    ],
)
def test_bad_feature_lists_are_one_line_config_errors(tmp_path, spec, expected):
    path = tmp_path / "c.yaml"
    path.write_text(f"start: 2019-01-01\nend: 2020-01-01\nml:\n  features: {spec}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "ml.features (line 4)" in str(exc.value) and expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_feature_of_the_wrong_length_is_refused():
    fr.EXTRA["_bad_len"] = fr.Feature("_bad_len", lambda bars: bars["close"].iloc[1:])
    try:
        with pytest.raises(fr.FeatureLookupError, match="returned 9 values for 10 bars"):
            fr.extra_feature_frame(_bars(10, 0), ["_bad_len"])
    finally:
        del fr.EXTRA["_bad_len"]


def test_mismatch_message_names_both_lists():
    assert fr.mismatch(mf.FEATURE_NAMES, mf.FEATURE_NAMES) is None
    message = fr.mismatch(mf.FEATURE_NAMES, [*mf.FEATURE_NAMES, PLUGIN])
    assert "trained with features [default] (20 inputs)" in message
    assert f"({21})" in message and PLUGIN in message


#: Every registered feature: the 20 defaults (one vectorised block, checked column by column),
#: the extra built-ins, and the example plug-in.
REGISTERED = [fr.DEFAULT, *fr.EXTRA, PLUGIN]


@pytest.mark.parametrize("name", REGISTERED)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), cut=st.integers(30, 280), scale=st.floats(0.5, 2.0))
def test_every_registered_feature_is_causal(name, seed, cut, scale):
    """Changing every bar after t (prices and volume) leaves each feature on days <= t unchanged,
    and the values on days <= t are those computed from the bars up to t alone."""
    prices = _bars(300, seed)
    changed = prices.copy()
    noise = np.random.default_rng(seed + 1).uniform(0.8, 1.2, (300 - cut - 1, 5))
    changed.iloc[cut + 1 :] = changed.iloc[cut + 1 :].to_numpy() * noise * scale
    changed["high"] = changed[["open", "high", "low", "close"]].max(axis=1)
    changed["low"] = changed[["open", "high", "low", "close"]].min(axis=1)
    base = fr.feature_frame(prices, [name]).iloc[: cut + 1]
    after = fr.feature_frame(changed, [name]).iloc[: cut + 1]
    assert base.shape[1] == (20 if name == fr.DEFAULT else 1)
    np.testing.assert_array_equal(after.to_numpy(), base.to_numpy())
    cut_only = fr.feature_frame(prices.iloc[: cut + 1], [name])
    np.testing.assert_allclose(cut_only.to_numpy(), base.to_numpy(), rtol=1e-12, atol=1e-15)


def test_book_serves_the_run_features_and_never_past_the_view(demo_store):
    names = fr.expand([fr.DEFAULT, PLUGIN])
    book = FeatureBook(demo_store, features=names)
    default = FeatureBook(demo_store)
    view = demo_store.view(pd.Timestamp("2016-06-30").date())
    panel = book.panel_as_of(book.symbols, view)
    assert list(panel.columns) == names
    pd.testing.assert_frame_equal(
        panel[mf.FEATURE_NAMES], default.panel_as_of(default.symbols, view)
    )
    sym = book.symbols[0]
    assert book.matrix(sym, view).shape[1] == 20  # stored samples keep the 20 defaults
    samples = pd.DataFrame(
        {"symbol": sym, "date": pd.to_datetime(["2016-06-03", "2016-06-10"]),
         "features": [[0.0] * 20, [0.0] * 20], "label": [0.01, 0.02]}
    )  # fmt: skip
    out = book.with_book_features(samples, view)
    assert [len(f) for f in out["features"]] == [21, 21]
    row = book.panel_as_of([sym], view, pd.Timestamp("2016-06-10").date()).iloc[0]
    np.testing.assert_array_equal(out["features"].iloc[1], row.to_numpy())
    with pytest.raises(LookAheadError):
        book.panel_as_of([sym], view, pd.Timestamp("2016-07-01").date())
    late = samples.assign(date=pd.to_datetime(["2016-06-03", "2016-08-01"]))
    kept = book.with_book_features(late, view)  # no row after the view's day is read
    assert list(kept["date"]) == [pd.Timestamp("2016-06-03")]


def test_entry_point_features_of_an_installed_package(tmp_path, monkeypatch):
    dist = tmp_path / "feat_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: feat-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{fr.ENTRY_POINT_GROUP}]\ngap_ep = overnight_gap:overnight_gap\n"
        "broken_ep = overnight_gap:nothing_here\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    names = fr.run_features(["default", "gap_ep"])
    frame = fr.feature_frame(_bars(40, 3), names)
    np.testing.assert_array_equal(
        frame["gap_ep"].to_numpy(), fr.feature_frame(_bars(40, 3), [PLUGIN])[PLUGIN].to_numpy()
    )
    with pytest.raises(fr.FeatureLookupError, match="entry point 'broken_ep'.*failed to load"):
        fr.resolve("broken_ep")
    with pytest.raises(fr.FeatureLookupError, match="available: default .*gap_ep"):
        fr.resolve("nope")
