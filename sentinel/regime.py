"""Market regime of a security as of a date: a quote-based score and an HMM state.

Quote-based regime (continuous)
-------------------------------
:func:`quote_data_from_prices` summarises the bars it is given (the caller passes rows <= T).
:func:`regime_score` is a weighted mean, in [-1, 1], of the components that can be computed
(weights renormalised over the available ones; none available -> 0):

==========  ======  ===========================================================
component   weight  value
==========  ======  ===========================================================
trend       0.30    tanh((price / MA200 - 1) / 0.10)
crossover   0.20    tanh((MA50 / MA200 - 1) / 0.05)
momentum    0.25    tanh(return_20d / 0.05)
position    0.15    2 * position in the 52-week close range - 1
turbulence  0.10    -clip((annualised 20d volatility - 0.25) / 0.25, 0, 1)
==========  ======  ===========================================================

Calm markets are not bullish by themselves, so turbulence only pulls the score down.
:func:`regime_dampening` = ``1 - 0.5 * |score|`` in [0.5, 1]: the factor applied to a predicted
return whose sign goes *against* the regime (a bullish prediction in a bearish regime or the
reverse). Predictions that agree with the regime, or a neutral regime, are left unchanged:
:func:`get_regime_adjusted_return` returns the factor it actually applied.

HMM regime (discrete)
---------------------
A 3-state ``hmmlearn`` ``GaussianHMM`` (``covariance_type="diag"``, fixed ``random_state``) on
two standardised inputs: the daily log return and its 20-day standard deviation. States are
mapped to 0 bear / 1 sideways / 2 bull by their mean return.

- *Fit cadence*: the model used for day T is fitted on the bars dated up to the last calendar
  day of the month before T's month (at most ``fit_window_rows`` of them, 5 years by default) and
  cached per (symbol, cut-off). The scaler is fitted on the same rows. A model therefore never
  sees T's month, and a backfill fits one model per symbol and month.
- *Filtering*: the regime for T is the argmax of the FILTERED probability of the last day,
  P(state_T | x_{T-L+1..T}), from a forward recursion (numpy, log-space) over the
  ``filter_window_rows`` (252) observations ending at T, starting from the model's start
  probabilities. Smoothed posteriors (``predict_proba``) would use the observations after T of a
  longer sequence and are not used. ``confidence`` is that probability.
- Fewer than ``min_rows`` (504, ~2 years) bars up to the cut-off -> ``None``. Flat prices (no
  return variance to model) -> sideways with confidence 1.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from sentinel.ml_features import clean_price_frame

REGIME_NAMES: dict[int, str] = {0: "bear", 1: "sideways", 2: "bull"}
MAX_DAMPENING = 0.5
_SCORE_WEIGHTS = {"trend": 0.30, "crossover": 0.20, "momentum": 0.25, "position": 0.15}
_TURBULENCE_WEIGHT = 0.10
_YEAR = 252
_QUOTE_KEYS = (
    "date", "price", "n_days", "ma20", "ma50", "ma200", "return_20d", "volatility_20d",
    "high_52w", "low_52w", "position_52w",
)  # fmt: skip

__all__ = [
    "REGIME_NAMES",
    "RegimeDetector",
    "RegimeModel",
    "fit_regime_model",
    "get_regime_adjusted_return",
    "quote_data_as_of",
    "quote_data_block",
    "quote_data_from_prices",
    "quote_data_panel",
    "regime_as_of",
    "regime_dampening",
    "regime_history",
    "regime_score",
]


# ============================================================================ quote-based regime
def _mean_or_none(values: np.ndarray, n: int) -> float | None:
    return float(values[-n:].mean()) if values.size >= n else None


def quote_data_from_prices(prices: pd.DataFrame) -> dict[str, Any]:
    """Quote summary of the given bars (pass rows <= T only): the input of :func:`regime_score`.

    Keys: ``date``, ``price``, ``ma20``, ``ma50``, ``ma200``, ``return_20d``, ``volatility_20d``
    (annualised std of 20 daily returns), ``high_52w``, ``low_52w``, ``position_52w`` (0 at the
    52-week low close, 1 at the high), ``n_days``. Values that need more bars are ``None``.
    """
    df = clean_price_frame(prices)
    last = df.index[-1].to_datetime64() if len(df) else None
    return _quote_from_closes(df["close"].to_numpy(), last)


def quote_data_panel(bars: pd.DataFrame, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
    """:func:`quote_data_from_prices` of every symbol in ``symbols`` with a row in ``bars``.

    ``bars`` is the long form (``date``, ``symbol``, ``close``, ...) a price panel read returns.
    One sort of the whole frame replaces a pandas frame per symbol (the planner asks for every
    symbol on every rebalance day); the cleaning is the same as :func:`clean_price_frame`'s
    (dates sorted, a repeated date keeps its last row, a non-finite or non-positive close is no
    bar) and the summary of each symbol is computed by the same code on the same numbers, so the
    result equals the per-symbol one exactly.
    """
    wanted = set(symbols)
    if bars.empty or not wanted:
        return {}
    codes, names = pd.factorize(bars["symbol"], sort=True)
    asked = np.array([name in wanted for name in names], dtype=bool)
    keep = (codes >= 0) & asked[codes]  # codes of -1 (a missing symbol) are never asked
    if not keep.any():
        return {}
    codes = codes[keep]
    when = pd.DatetimeIndex(bars["date"].to_numpy()[keep]).to_numpy(dtype="datetime64[ns]")
    close = np.asarray(bars["close"].to_numpy()[keep], dtype=np.float64)
    order = np.lexsort((when, codes))  # stable: equal (symbol, date) rows keep their order
    codes, when, close = codes[order], when[order], close[order]
    last_of_date = np.ones(len(codes), dtype=bool)  # a repeated date keeps its last row
    last_of_date[:-1] = (codes[1:] != codes[:-1]) | (when[1:] != when[:-1])
    n_rows = np.bincount(codes, minlength=len(names))  # symbols with rows but no usable bar
    ok = last_of_date & np.isfinite(close) & (close > 0)
    codes, when, close = codes[ok], when[ok], close[ok]
    bounds = np.searchsorted(codes, np.arange(len(names) + 1))
    items = []
    for i, name in enumerate(names):
        if not n_rows[i]:  # not asked for
            continue
        lo, hi = bounds[i], bounds[i + 1]
        items.append((name, close[lo:hi], when[hi - 1] if hi > lo else None))
    return _quotes_of(items)


def quote_data_block(
    values: np.ndarray, dates: pd.DatetimeIndex, symbols: Iterable[str], wanted: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """:func:`quote_data_panel` of a wide close block (date x symbol, NaN: no bar).

    The block is what :meth:`~sentinel.db.market.MarketView.get_close_block` returns for
    the same read as the long bars: the same closes, so the same summaries; a column with a
    close but no usable one (non-finite or <= 0) gets the summary of no bars, as in the panel.
    """
    want = set(wanted)
    names = list(symbols)
    if not want or not names:
        return {}
    when = dates.to_numpy(dtype="datetime64[ns]")
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(values) & (values > 0)
    if len(values) >= _YEAR and usable.all():  # every symbol has a full year: no per-column mask
        order = sorted((name, j) for j, name in enumerate(names) if name in want)
        cols = [j for _, j in order]
        if not cols:
            return {}
        window = np.ascontiguousarray(values[-_YEAR:, cols].T)
        rows = _year_quotes(window, [when[-1]] * len(cols), [len(values)] * len(cols))
        return {name: row for (name, _), row in zip(order, rows, strict=True)}
    items = []
    for j, name in enumerate(names):
        if name not in want:
            continue
        rows = np.flatnonzero(usable[:, j])
        items.append((name, values[rows, j], when[rows[-1]] if len(rows) else None))
    items.sort(key=lambda item: item[0])
    return _quotes_of(items)


def _quotes_of(
    items: list[tuple[str, np.ndarray, np.datetime64 | None]],
) -> dict[str, dict[str, Any]]:
    """:func:`_quote_from_closes` of each (name, clean closes, last date), in order.

    Symbols with a full year of closes are summarised together (:func:`_year_quotes`: the
    same float operations row-wise), the others one by one.
    """
    full = [i for i, (_, closes, _) in enumerate(items) if len(closes) >= _YEAR]
    year = {}
    if full:
        window = np.stack([items[i][1][-_YEAR:] for i in full])  # one C-contiguous row each
        lasts = [items[i][2] for i in full]
        counts = [len(items[i][1]) for i in full]
        year = dict(zip(full, _year_quotes(window, lasts, counts), strict=True))
    return {
        name: year[i] if i in year else _quote_from_closes(closes, last)
        for i, (name, closes, last) in enumerate(items)
    }


def _year_quotes(
    close: np.ndarray, lasts: list[np.datetime64 | None], counts: list[int]
) -> list[dict[str, Any]]:
    """:func:`_quote_from_closes` of rows of a year of closes each (``close``: C-contiguous,
    ``_YEAR`` columns). Each statistic is the 1-D one's reduction along a contiguous row, so
    the floats are the same (the tests compare them bit for bit)."""
    price = close[:, -1]
    ma20 = close[:, -20:].mean(axis=1)
    ma50 = close[:, -50:].mean(axis=1)
    ma200 = close[:, -200:].mean(axis=1)
    ret20 = price / close[:, -21] - 1.0
    daily = close[:, -20:] / close[:, -21:-1] - 1.0
    vol = daily.std(axis=1, ddof=1) * math.sqrt(_YEAR)
    high, low = close.max(axis=1), close.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        position = np.where(high > low, (price - low) / (high - low), 0.5)
    days = np.array(lasts, dtype="datetime64[D]").astype(str).tolist()
    columns = zip(
        days, price.tolist(), counts, ma20.tolist(), ma50.tolist(), ma200.tolist(),
        ret20.tolist(), vol.tolist(), high.tolist(), low.tolist(), position.tolist(),
        strict=True,
    )  # fmt: skip
    return [dict(zip(_QUOTE_KEYS, row, strict=True)) for row in columns]


def _quote_from_closes(closes: np.ndarray, last: np.datetime64 | None) -> dict[str, Any]:
    """The quote summary of a symbol's clean closes (oldest first) whose last bar is ``last``."""
    close = closes[-_YEAR:]
    out: dict[str, Any] = {"date": None, "price": None, "n_days": len(closes)}
    out.update(dict.fromkeys(["ma20", "ma50", "ma200", "return_20d", "volatility_20d"]))
    out.update(dict.fromkeys(["high_52w", "low_52w", "position_52w"]))
    if close.size == 0:
        return out
    price = float(close[-1])
    out.update(date=str(np.datetime64(last, "D")), price=price)
    out.update(ma20=_mean_or_none(close, 20), ma50=_mean_or_none(close, 50))
    out.update(ma200=_mean_or_none(close, 200))
    if close.size > 20:
        out["return_20d"] = price / float(close[-21]) - 1.0
        daily = close[-21:][1:] / close[-21:][:-1] - 1.0
        out["volatility_20d"] = float(daily.std(ddof=1) * math.sqrt(_YEAR))
    high, low = float(close.max()), float(close.min())
    out.update(high_52w=high, low_52w=low)
    out["position_52w"] = (price - low) / (high - low) if high > low else 0.5
    return out


def quote_data_as_of(prices: pd.DataFrame, as_of: str | pd.Timestamp) -> dict[str, Any]:
    """:func:`quote_data_from_prices` of the bars dated on or before ``as_of``."""
    df = clean_price_frame(prices)
    return quote_data_from_prices(df.loc[: pd.Timestamp(as_of)])


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _score_components(q: dict[str, Any]) -> dict[str, float]:
    price, ma50, ma200 = _finite(q.get("price")), _finite(q.get("ma50")), _finite(q.get("ma200"))
    ret20, pos = _finite(q.get("return_20d")), _finite(q.get("position_52w"))
    parts: dict[str, float] = {}
    if price is not None and ma200:
        parts["trend"] = math.tanh((price / ma200 - 1.0) / 0.10)
    if ma50 is not None and ma200:
        parts["crossover"] = math.tanh((ma50 / ma200 - 1.0) / 0.05)
    if ret20 is not None:
        parts["momentum"] = math.tanh(ret20 / 0.05)
    if pos is not None:
        parts["position"] = 2.0 * min(max(pos, 0.0), 1.0) - 1.0
    return parts


def regime_score(quote_data: dict[str, Any]) -> float:
    """Continuous regime in [-1, 1] (-1 strongly bearish, 0 neutral, 1 strongly bullish)."""
    parts = _score_components(quote_data)
    weights = {k: _SCORE_WEIGHTS[k] for k in parts}
    vol = _finite(quote_data.get("volatility_20d"))
    if vol is not None:
        parts["turbulence"] = -min(max((vol - 0.25) / 0.25, 0.0), 1.0)
        weights["turbulence"] = _TURBULENCE_WEIGHT
    total = sum(weights.values())
    if total == 0:
        return 0.0
    score = sum(weights[k] * parts[k] for k in parts) / total
    return float(min(max(score, -1.0), 1.0))


def regime_dampening(score: float) -> float:
    """Factor in [0.5, 1] for a prediction against a regime of this strength (1 = none)."""
    s = _finite(score) or 0.0
    return 1.0 - MAX_DAMPENING * min(abs(s), 1.0)


def get_regime_adjusted_return(
    predicted_return: float, quote_data: dict[str, Any]
) -> tuple[float, float, float]:
    """Dampen a predicted return that goes against the quote-based regime.

    Returns
    -------
    (adjusted_return, regime_score, applied_dampening): the dampening is 1.0 when the
    prediction agrees with the regime (or either is zero), else ``regime_dampening(score)``.
    """
    score = regime_score(quote_data)
    predicted = _finite(predicted_return) or 0.0
    factor = regime_dampening(score) if predicted * score < 0 else 1.0
    return predicted * factor, score, factor


# ============================================================================ HMM regime
@dataclass(frozen=True)
class RegimeModel:
    """Fitted HMM parameters plus the input scaler, fitted on one training window."""

    startprob: np.ndarray  # (K,)
    transmat: np.ndarray  # (K, K)
    means: np.ndarray  # (K, D), scaled space
    variances: np.ndarray  # (K, D), scaled space
    scaler_mean: np.ndarray  # (D,)
    scaler_std: np.ndarray  # (D,)
    state_regime: np.ndarray  # (K,) state -> 0 bear / 1 sideways / 2 bull
    fitted_until: pd.Timestamp | None = None
    degenerate: bool = False


def _observations(close: np.ndarray, vol_window: int) -> np.ndarray:
    """(daily log return, its ``vol_window``-day std) for bars ``vol_window``.. of ``close``."""
    r = np.diff(np.log(close))
    if r.size < vol_window:
        return np.empty((0, 2))
    vol = sliding_window_view(r, vol_window).std(axis=1, ddof=1)
    return np.column_stack([r[vol_window - 1 :], vol])


def fit_regime_model(
    obs: np.ndarray,
    *,
    n_states: int = 3,
    random_state: int = 7,
    n_iter: int = 50,
    fitted_until: pd.Timestamp | None = None,
) -> RegimeModel:
    """Fit the scaler and a diagonal GaussianHMM on ``obs`` (the training window only)."""
    mean = obs.mean(axis=0)
    std = obs.std(axis=0)
    if obs.shape[0] < 2 * n_states or std[0] <= 1e-12:
        return _degenerate_model(n_states, obs.shape[1], fitted_until)
    std = np.where(std > 1e-12, std, 1.0)
    hmm = GaussianHMM(
        n_components=n_states, covariance_type="diag", n_iter=n_iter, random_state=random_state
    )
    # Tiny matrices: BLAS threads only contend (a 4x slow-down seen on 2 busy cores).
    with threadpool_limits(limits=1):
        hmm.fit((obs - mean) / std)
    covars = np.asarray(hmm.covars_)
    variances = np.diagonal(covars, axis1=1, axis2=2) if covars.ndim == 3 else covars
    order = np.argsort(hmm.means_[:, 0], kind="stable")  # by mean return: bear .. bull
    state_regime = np.empty(n_states, dtype=np.int64)
    state_regime[order] = np.round(np.linspace(0, 2, n_states)).astype(np.int64)
    return RegimeModel(
        startprob=np.asarray(hmm.startprob_, dtype=np.float64),
        transmat=np.asarray(hmm.transmat_, dtype=np.float64),
        means=np.asarray(hmm.means_, dtype=np.float64),
        variances=np.asarray(variances, dtype=np.float64),
        scaler_mean=mean,
        scaler_std=std,
        state_regime=state_regime,
        fitted_until=fitted_until,
    )


def _degenerate_model(n_states: int, dims: int, fitted_until: pd.Timestamp | None) -> RegimeModel:
    """Stand-in for data with no return variance: always sideways."""
    return RegimeModel(
        startprob=np.full(n_states, 1.0 / n_states),
        transmat=np.full((n_states, n_states), 1.0 / n_states),
        means=np.zeros((n_states, dims)),
        variances=np.ones((n_states, dims)),
        scaler_mean=np.zeros(dims),
        scaler_std=np.ones(dims),
        state_regime=np.ones(n_states, dtype=np.int64),
        fitted_until=fitted_until,
        degenerate=True,
    )


def filtered_probabilities(model: RegimeModel, obs: np.ndarray) -> np.ndarray:
    """P(state at the last step | observations so far) per sequence, by the forward algorithm.

    ``obs`` is (L, D) or (B, L, D) (B sequences of equal length, filtered together). Uses only
    the rows given, so the result for a sequence ending at T depends on nothing after T.
    """
    x = (np.asarray(obs, dtype=np.float64) - model.scaler_mean) / model.scaler_std
    batch = x.ndim == 2
    x = x[None] if batch else x
    var = model.variances
    log_b = -0.5 * (
        np.sum(np.log(2.0 * np.pi * var), axis=1)[None, None, :]
        + np.sum((x[:, :, None, :] - model.means[None, None]) ** 2 / var[None, None], axis=3)
    )  # (B, L, K)
    # Scaled forward recursion: emissions relative to each step's most likely state (so at least
    # one is exp(0) = 1 and nothing underflows), renormalised every step. Same probabilities as
    # the log-space recursion, without two logsumexp calls per step.
    b = np.exp(log_b - log_b.max(axis=2, keepdims=True))
    alpha = _normalise(model.startprob[None, :] * b[:, 0])
    a = model.transmat
    for t in range(1, x.shape[1]):
        alpha = _normalise((alpha @ a) * b[:, t])
    return alpha[0] if batch else alpha


def _normalise(p: np.ndarray) -> np.ndarray:
    """Rows summing to 1; a row that vanished (impossible under the model) becomes uniform."""
    total = p.sum(axis=1, keepdims=True)
    out = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    return out


def _month_cutoff(day: pd.Timestamp) -> pd.Timestamp:
    """Last calendar day of the month before ``day``'s month (the model's training cut-off)."""
    return day.to_period("M").start_time - pd.Timedelta(days=1)


@dataclass(frozen=True)
class _HmmParams:
    min_rows: int = 2 * _YEAR
    fit_window_rows: int = 5 * _YEAR
    filter_window_rows: int = _YEAR
    vol_window: int = 20
    n_iter: int = 50
    random_state: int = 7


def _model_for(
    dates: pd.DatetimeIndex,
    close: np.ndarray,
    cutoff: pd.Timestamp,
    params: _HmmParams,
    cache: dict[Any, RegimeModel] | None,
) -> RegimeModel | None:
    """The model trained on bars dated <= ``cutoff`` (cached), or None with too few bars."""
    n_fit = int(dates.searchsorted(cutoff, side="right"))
    if n_fit < params.min_rows:
        return None
    key = (cutoff, n_fit, float(close[n_fit - 1]))
    if cache is not None and key in cache:
        return cache[key]
    window = close[max(0, n_fit - params.fit_window_rows) : n_fit]
    model = fit_regime_model(
        _observations(window, params.vol_window),
        random_state=params.random_state,
        n_iter=params.n_iter,
        fitted_until=pd.Timestamp(dates[n_fit - 1]),
    )
    if cache is not None:
        cache[key] = model
    return model


def _filter_obs(close: np.ndarray, end: int, params: _HmmParams) -> np.ndarray:
    """The ``filter_window_rows`` observations ending at bar ``end - 1``."""
    need = params.filter_window_rows + params.vol_window
    return _observations(close[max(0, end - need) : end], params.vol_window)


def _result(model: RegimeModel, probs: np.ndarray) -> dict[str, Any]:
    regime_probs = np.zeros(3)
    np.add.at(regime_probs, model.state_regime, probs)
    regime = int(np.argmax(regime_probs))
    return {
        "regime": regime,
        "regime_name": REGIME_NAMES[regime],
        "confidence": float(regime_probs[regime]),
    }


def regime_as_of(
    prices: pd.DataFrame,
    as_of: str | pd.Timestamp,
    cache: dict[Any, RegimeModel] | None = None,
    **params: int,
) -> dict[str, Any] | None:
    """HMM regime ``{regime, regime_name, confidence}`` as of ``as_of`` from bars <= ``as_of``.

    ``cache`` (a dict, one per symbol) keeps fitted models across calls; ``params`` overrides
    ``min_rows``, ``fit_window_rows``, ``filter_window_rows``, ``vol_window``, ``n_iter``,
    ``random_state``.
    """
    p = _HmmParams(**params)
    df = clean_price_frame(prices)
    when = pd.Timestamp(as_of)
    dates = pd.DatetimeIndex(df.index)
    close = df["close"].to_numpy()
    end = int(dates.searchsorted(when, side="right"))
    model = _model_for(dates[:end], close[:end], _month_cutoff(when), p, cache)
    if model is None:
        return None
    if model.degenerate:
        return {"regime": 1, "regime_name": REGIME_NAMES[1], "confidence": 1.0}
    return _result(model, filtered_probabilities(model, _filter_obs(close, end, p)))


def regime_history(
    prices: pd.DataFrame,
    dates: Iterable[str | pd.Timestamp] | None = None,
    cache: dict[Any, RegimeModel] | None = None,
    **params: int,
) -> pd.DataFrame:
    """:func:`regime_as_of` for many dates of one symbol (default: every bar), for backfills.

    One model per month cut-off; the dates sharing a model are filtered together in one batched
    forward pass. Dates without enough history are left out of the result.
    """
    p = _HmmParams(**params)
    df = clean_price_frame(prices)
    bars = pd.DatetimeIndex(df.index)
    close = df["close"].to_numpy()
    wanted = bars if dates is None else pd.DatetimeIndex([pd.Timestamp(d) for d in dates])
    cache = {} if cache is None else cache
    records: list[dict[str, Any]] = []
    by_cutoff: dict[pd.Timestamp, list[pd.Timestamp]] = {}
    for day in wanted.sort_values():
        by_cutoff.setdefault(_month_cutoff(day), []).append(day)
    for cutoff, days in by_cutoff.items():
        model = _model_for(bars, close, cutoff, p, cache)
        if model is None:
            continue
        ends = [int(bars.searchsorted(day, side="right")) for day in days]
        seqs = [_filter_obs(close, end, p) for end in ends]
        for length in sorted({len(s) for s in seqs}):
            group = [i for i, s in enumerate(seqs) if len(s) == length]
            if model.degenerate or length == 0:
                probs = None
            else:
                probs = filtered_probabilities(model, np.stack([seqs[i] for i in group]))
            for j, i in enumerate(group):
                if model.degenerate:
                    rec = {"regime": 1, "regime_name": REGIME_NAMES[1], "confidence": 1.0}
                elif probs is None:
                    continue
                else:
                    rec = _result(model, probs[j])
                records.append({"date": days[i], **rec})
    out = pd.DataFrame.from_records(
        records, columns=["date", "regime", "regime_name", "confidence"]
    )
    return out.set_index("date")


class PriceStore(Protocol):
    """Where :class:`RegimeDetector` reads bars: a store's ``market`` view."""

    def get_prices(
        self, symbol: str, days: int | None = None, end_date: Any = None
    ) -> pd.DataFrame: ...


class RegimeStateStore(Protocol):
    """Where :class:`RegimeDetector` writes regime rows: a store's ``signals`` repository."""

    def upsert_regime_state(
        self, symbol: str, d: datetime.date, regime: int, regime_name: str, confidence: float
    ) -> Any: ...


class RegimeDetector:
    """HMM regime per symbol as of a date, reading bars through a store.

    Parameters
    ----------
    store : object with ``get_prices(symbol, days=None, end_date=None)`` (bars dated <=
        ``end_date``), e.g. ``store.view(day).market``.
    states : object with ``upsert_regime_state(symbol, date, regime, regime_name, confidence)``,
        e.g. ``store.signals``; only :meth:`store_regime_state_for_date` needs it.
    **params : HMM settings, see :func:`regime_as_of`.
    """

    def __init__(
        self, store: PriceStore, states: RegimeStateStore | None = None, **params: int
    ) -> None:
        self.store = store
        self.states = states
        self.params = params
        _HmmParams(**params)  # reject unknown settings now, not at the first call
        self._models: dict[str, dict[Any, RegimeModel]] = {}

    def detect_regime_as_of(self, symbol: str, date_str: str) -> dict[str, Any] | None:
        """``{regime, regime_name, confidence}`` for ``symbol`` as of ``date_str``, or None."""
        when = pd.Timestamp(date_str)  # the notes' API takes text: parsed here, once
        prices = self.store.get_prices(symbol, end_date=when.date())
        if prices is None or len(prices) == 0:
            return None
        cache = self._models.setdefault(symbol, {})
        return regime_as_of(prices, when, cache=cache, **self.params)

    def store_regime_state_for_date(
        self, symbol: str, date_str: str, regime: int, regime_name: str, confidence: float
    ) -> None:
        """Write one ``regime_states`` row (the store makes it idempotent); date as YYYY-MM-DD."""
        if regime not in REGIME_NAMES or REGIME_NAMES[regime] != regime_name:
            raise ValueError(f"regime {regime!r} / {regime_name!r} is not one of {REGIME_NAMES}")
        if not 0.0 <= float(confidence) <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
        if self.states is None:
            raise ValueError("RegimeDetector(store, states): no states given to write the row to")
        day = pd.Timestamp(date_str).date()
        self.states.upsert_regime_state(symbol, day, int(regime), regime_name, float(confidence))
