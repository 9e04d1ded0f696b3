"""The planner's array paths against the per-symbol pandas code they replaced: equal exactly.

Each rebalance day used to build a pandas frame per symbol (regime quotes, feature rows, one
``.at`` write per score); the array paths must give the same numbers and the same frames (values,
dtypes, index), so a backtest's scores, orders and equity do not move. The references below are
the replaced code, kept verbatim.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.db import ScoreRecord
from sentinel.errors import LookAheadError
from sentinel.ml.blend import blend_scores, return_to_score
from sentinel.ml.dataset import FeatureBook
from sentinel.ml.errors import load_problem
from sentinel.planner import SCORE_COLUMNS, RebalanceEngine
from sentinel.regime import get_regime_adjusted_return, quote_data_from_prices, quote_data_panel
from sentinel.wavelet import WINDOW, wavelet_components, wavelet_scores_panel

DAY = date(2017, 3, 15)


# ---------------------------------------------------------------------------- references
def _reference_quotes(bars: pd.DataFrame, symbols: list[str]) -> dict[str, dict[str, Any]]:
    return {
        s: quote_data_from_prices(g.set_index("date"))
        for s, g in bars[bars["symbol"].isin(list(symbols))].groupby("symbol")
    }


def _reference_panel_as_of(book: FeatureBook, symbols: list[str], d: date) -> pd.DataFrame:
    when = pd.Timestamp(d)
    rows = {}
    for s in symbols:
        frame = book._served.get(s)
        if frame is None:
            continue
        i = frame.index.searchsorted(when, side="right") - 1
        if i >= 0:
            rows[s] = frame.iloc[i].to_numpy()
    return pd.DataFrame.from_dict(rows, orient="index", columns=book.feature_names)


def _reference_wavelet_panel(closes: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    panel = closes.sort_index() if not closes.index.is_monotonic_increasing else closes
    end = panel.index.searchsorted(pd.Timestamp(as_of), side="right")
    tail = panel.iloc[max(0, end - WINDOW) : end].to_numpy(dtype=np.float64).T
    out = pd.DataFrame(
        {"score": 0.5, "d1": 0.0, "d4": 0.0, "valid": False},
        index=pd.Index(panel.columns, name="symbol"),
    )
    full = np.zeros(len(out), dtype=bool)
    if tail.shape[1] == WINDOW:
        with np.errstate(invalid="ignore", divide="ignore"):
            full = np.all(np.isfinite(tail) & (tail > 0), axis=1)
    if full.any():
        from sentinel.wavelet import components_from_log_windows

        score, d1, d4 = components_from_log_windows(np.log(tail[full]))
        out.loc[full, ["score", "d1", "d4"]] = np.column_stack([score, d1, d4])
        out.loc[full, "valid"] = True
    for i in np.flatnonzero(~full):
        result = wavelet_components(panel.iloc[:end, i].to_numpy(dtype=np.float64))
        if result is not None:
            out.iloc[i, :3] = list(result)
            out.iloc[i, 3] = True
    return out


def _reference_blend(wavelet, features, predictor, *, blend_ratio, ml_enabled=True, quotes=None,
                     model_id=None, model_ids=None, ml_allowed=None) -> pd.DataFrame:  # fmt: skip
    symbols = sorted(wavelet)
    out = pd.DataFrame(index=pd.Index(symbols, name="symbol"), columns=SCORE_COLUMNS)
    out["wavelet_score"] = [wavelet[s].score for s in symbols]
    out["wavelet_d1"] = [wavelet[s].components.get("wavelet_d1", 0.0) for s in symbols]
    out["wavelet_d4"] = [wavelet[s].components.get("wavelet_d4", 0.0) for s in symbols]
    out["blend_ratio"] = float(blend_ratio)
    out["predicted_return"] = np.nan
    out["ml_score"] = np.nan
    out["regime_score"] = np.nan
    out["regime_dampening"] = np.nan
    out["model_id"] = None
    out["fallback"] = None
    raw: dict[str, float] = {}
    if not ml_enabled:
        out["fallback"] = "ml disabled"
    elif predictor is None:
        out["fallback"] = "no models"
    else:
        every = getattr(predictor, "scores_every_symbol", False)
        have = set() if every else set(predictor.symbols)
        rows = {}
        for s in symbols:
            if ml_allowed is not None and not ml_allowed(s):
                out.at[s, "fallback"] = "ml disabled for symbol"
            elif not every and s not in have:
                err = getattr(predictor, "load_errors", {}).get(s)
                out.at[s, "fallback"] = (
                    f"model load error: {load_problem(err)}"[:128] if err else "no model"
                )
            elif features is None or s not in features.index:
                out.at[s, "fallback"] = "no features"
            else:
                x = features.loc[s].to_numpy(dtype="float64")
                if np.isfinite(x).all():
                    rows[s] = x
                else:
                    out.at[s, "fallback"] = "non-finite features"
        if rows:
            try:
                raw = predictor.predict_batch(rows)
            except Exception as exc:  # noqa: BLE001
                for s in rows:
                    out.at[s, "fallback"] = f"prediction failed: {type(exc).__name__}"
                raw = {}
    for s, r in raw.items():
        if not np.isfinite(r):
            out.at[s, "fallback"] = "non-finite prediction"
            continue
        quote = (quotes or {}).get(s)
        adjusted, rscore, damp = (
            get_regime_adjusted_return(float(r), quote) if quote else (float(r), 0.0, 1.0)
        )
        out.at[s, "predicted_return"] = float(r)
        out.at[s, "ml_score"] = float(return_to_score(adjusted))
        out.at[s, "regime_score"] = rscore
        out.at[s, "regime_dampening"] = damp
        out.at[s, "model_id"] = (model_ids or {}).get(s, model_id)
    out["blended_score"] = blend_scores(out["wavelet_score"], out["ml_score"], blend_ratio)
    for col in ("wavelet_score", "predicted_return", "ml_score", "blended_score",
                "regime_score", "regime_dampening", "blend_ratio"):  # fmt: skip
        out[col] = out[col].astype("float64")
    return out


# ---------------------------------------------------------------------------- helpers
def _messy_bars(seed: int) -> pd.DataFrame:
    """Long bars in no order, with repeated dates, NaN / zero / negative closes, a symbol with
    no usable close, one with fewer than 20 bars: every branch of the cleaning and the summary."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, n in enumerate((300, 260, 15, 1, 40)):
        dates = pd.bdate_range("2020-01-01", periods=n)
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        parts.append(pd.DataFrame({"date": dates, "symbol": f"S{k}", "close": close}))
    bars = pd.concat(parts, ignore_index=True)
    bars["open"] = bars["high"] = bars["low"] = bars["close"]
    bars["volume"] = 1e6
    dup = bars.sample(12, random_state=seed).assign(close=lambda f: f["close"] * 1.1)
    bars = pd.concat([bars, dup], ignore_index=True)
    bad = rng.choice(len(bars), 25, replace=False)
    bars.loc[bad, "close"] = rng.choice([np.nan, 0.0, -1.0, np.inf], 25)
    bars.loc[bars["symbol"] == "S3", "close"] = np.nan  # rows, but no bar at all
    return bars.sample(frac=1.0, random_state=seed).reset_index(drop=True)


class _FakePredictor:
    """A predictor with a known formula, some symbols without a model, one load error."""

    def __init__(self, symbols: list[str], *, fail: bool = False, nan_for: str | None = None):
        self.symbols = symbols
        self.load_errors = {"ZZZ": "file truncated"}
        self.fail, self.nan_for = fail, nan_for

    def predict_batch(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        if self.fail:
            raise RuntimeError("bad model")
        return {
            s: np.nan if s == self.nan_for else float(np.tanh(x.sum()) * 0.08)
            for s, x in rows.items()
            if s in self.symbols
        }


def _wavelet(symbols: list[str], seed: int) -> dict[str, ScoreRecord]:
    rng = np.random.default_rng(seed)
    return {
        s: ScoreRecord(s, DAY, 0, float(rng.uniform()),
                       {"wavelet_d1": float(rng.uniform(-1, 1)),
                        "wavelet_d4": float(rng.uniform(-1, 1))})
        for s in symbols
    }  # fmt: skip


# ---------------------------------------------------------------------------- tests
@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_quote_panel_equals_the_per_symbol_quotes(seed) -> None:
    bars = _messy_bars(seed)
    wanted = ["S0", "S1", "S2", "S3", "S9"]  # S4 not asked for, S9 has no rows
    got = quote_data_panel(bars, wanted)
    want = _reference_quotes(bars, wanted)
    assert list(want) == ["S0", "S1", "S2", "S3"] and want["S3"]["n_days"] == 0
    assert got == want  # exact: the same floats, the same None


def test_quote_panel_on_store_bars(demo_store) -> None:
    view = demo_store.view(DAY)
    symbols = view.market.universe_symbols(DAY)
    bars = view.market.get_price_panel(symbols, days=260, end_date=DAY)
    got = quote_data_panel(bars, symbols[:-1])
    assert got == _reference_quotes(bars, symbols[:-1]) and len(got) == len(symbols) - 1
    assert quote_data_panel(bars.iloc[:0], symbols) == {}


def _cases(symbols: list[str], features: pd.DataFrame):
    half = symbols[: len(symbols) // 2]  # ZZZ (last) has a load error, not a model
    bad = features.copy()
    bad.iloc[1, 3] = np.nan
    return [
        dict(features=features, predictor=_FakePredictor(symbols)),
        dict(features=bad, predictor=_FakePredictor(half, nan_for=symbols[0]),
             ml_allowed=lambda s: s != symbols[2], model_ids={symbols[0]: "other"}),
        dict(features=features.iloc[:3], predictor=_FakePredictor(symbols)),
        dict(features=None, predictor=_FakePredictor(symbols)),
        dict(features=features, predictor=_FakePredictor(symbols, fail=True)),
        dict(features=features, predictor=None),
        dict(features=features, predictor=_FakePredictor(symbols), ml_enabled=False),
    ]  # fmt: skip


def test_predict_and_blend_equals_the_per_symbol_frame(demo_store) -> None:
    view = demo_store.view(DAY)
    symbols = view.market.universe_symbols(DAY) + ["ZZZ"]
    bars = view.market.get_price_panel(symbols, days=260, end_date=DAY)
    quotes = quote_data_panel(bars, symbols)
    rng = np.random.default_rng(5)
    features = pd.DataFrame(rng.normal(size=(len(symbols), 4)), index=symbols[::-1])
    wavelet = _wavelet(symbols, 1)
    for case in _cases(symbols, features):
        kw = dict(blend_ratio=0.3, quotes=quotes, model_id="m1", **case)
        got = RebalanceEngine().predict_and_blend(view, wavelet, **kw)
        want = _reference_blend(wavelet, **kw)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert list(got.dtypes) == list(want.dtypes)
    assert got["fallback"].eq("ml disabled").all()  # the last case: every branch was reached
    empty = RebalanceEngine().predict_and_blend(view, {}, None, None, blend_ratio=0.3)
    pd.testing.assert_frame_equal(empty, _reference_blend({}, None, None, blend_ratio=0.3))


def test_predict_and_blend_reaches_every_fallback(demo_store) -> None:
    """The equality above is only as good as its cases: each reason must appear in them."""
    view = demo_store.view(DAY)
    symbols = view.market.universe_symbols(DAY) + ["ZZZ"]
    features = pd.DataFrame(np.ones((len(symbols), 4)), index=symbols)
    seen = set()
    for case in _cases(symbols, features):
        out = RebalanceEngine().predict_and_blend(view, _wavelet(symbols, 2), blend_ratio=0.5,
                                                  model_id="m", **case)  # fmt: skip
        seen |= {str(v).split(":")[0] for v in out["fallback"].dropna()}
    assert seen == {"ml disabled", "no models", "no model", "model load error", "no features",
                    "non-finite features", "non-finite prediction", "ml disabled for symbol",
                    "prediction failed"}  # fmt: skip


def test_panel_as_of_equals_the_row_lookup_and_stays_bounded(demo_store) -> None:
    book = FeatureBook(demo_store)
    symbols = [*book.symbols, "NOPE"]
    for d in (date(2015, 1, 2), date(2015, 4, 1), DAY, date(2017, 12, 29)):
        got = book.panel_as_of(symbols, demo_store.view(d))
        want = _reference_panel_as_of(book, symbols, d)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert len(got) == len(book.symbols)
    view = demo_store.view(DAY)
    with pytest.raises(LookAheadError):  # the cache still refuses a day past the view's
        book.panel_as_of(symbols, view, as_of=date(2017, 3, 16))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(WINDOW - 10, WINDOW + 40))
def test_wavelet_panel_equals_the_frame_writes(seed, n_rows) -> None:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-01", periods=n_rows)
    closes = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_rows, 6)), axis=0)),
        index=dates, columns=[f"S{i}" for i in range(6)],
    )  # fmt: skip
    closes.iloc[rng.integers(0, n_rows, 4), 1] = np.nan  # gaps: the one-by-one path
    closes.iloc[-3, 2] = 0.0
    closes.iloc[: n_rows - 60, 3] = np.nan  # too short: not valid
    as_of = dates[-1 - int(rng.integers(0, 5))]
    got = wavelet_scores_panel(closes, as_of)
    pd.testing.assert_frame_equal(got, _reference_wavelet_panel(closes, as_of), check_exact=True)
