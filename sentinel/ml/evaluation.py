"""Cross-sectional evaluation of scores: does a score order the universe well on each day?

The strategy ranks stocks against each other on each rebalance day, so the figure that matters
is the day's rank IC: the Spearman correlation across the universe between a score and the
return realised over the following horizon. Over the days of a run, per score:

- ``mean_ic``, ``ic_std``, ``icir`` (mean / std of the daily ICs, not annualised);
- ``t_nw``: the t-statistic of the mean IC with Newey-West (HAC) standard errors, because the
  horizon is longer than the spacing of the days (weekly days, 14-day returns: neighbouring ICs
  share returns and are correlated); ``nw_lag`` = ceil(horizon / median spacing) - 1 lags;
- quantile (default quintile) mean forward returns, the top-minus-bottom ``spread`` per day,
  its mean and Newey-West t;
- ``turnover`` = 1 - the mean rank autocorrelation of the score between consecutive days;
- ``hit_rate``: the fraction of days with a positive IC;
- ``verdict``: a rule on ``t_nw`` (|t| < 2: no evidence of information).

Input is a long frame (``date``, ``symbol``, one column per score, ``forward_return``) where a
forward return not yet known on the evaluation's as-of day is NaN: such days are kept in the
per-day output as "not yet known" and never enter a figure.

Computed with pandas/numpy at run time (the Newey-West t is statsmodels' HAC OLS replayed in
numpy, see :func:`newey_west_t`); the definitions follow alphalens-reloaded
(``factor_information_coefficient``, ``mean_return_by_quantile`` with ``demeaned=False``,
``quantize_factor`` by ``pd.qcut`` per day, ``factor_rank_autocorrelation``), and the tests
check equality with alphalens itself. alphalens is not a run-time dependency: it pulls
matplotlib and seaborn into every install for four groupbys, and its input cleaning (forward
returns from a price panel by rows, frequency inference) does not fit forward returns that
are "known only once the horizon has passed".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sentinel.ml.errors import MLError

#: Column of the realised forward return (NaN while not yet known).
RETURN = "forward_return"
#: |t| at or above this is called information; below it, "no evidence of information".
T_THRESHOLD = 2.0
#: Fewer names than this on a day and its IC is undefined.
MIN_NAMES = 3
#: Fewer known days than this and no verdict is given.
MIN_DAYS = 3
NO_EVIDENCE = "no evidence of information (|t| < 2)"


class EvaluationError(MLError):
    """An evaluation that cannot be done (no ML, horizon past the period, one symbol...)."""


def _check(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in ("date", "symbol", RETURN, *columns) if c not in frame.columns]
    if missing:
        raise EvaluationError(f"evaluation frame lacks columns: {', '.join(missing)}")


def rank_ic_by_day(frame: pd.DataFrame, score: str, ret: str = RETURN) -> pd.Series:
    """Spearman correlation of ``score`` and ``ret`` across symbols, per date (NaN if undefined).

    A day with fewer than :data:`MIN_NAMES` names holding both values, or a constant score or
    return that day, has no IC (NaN), never 0. Computed for all dates at once (grouped average
    ranks, then the Pearson correlation of the centred ranks), not by a function call per date.
    """
    _check(frame, [score])
    g = frame[["date", score, ret]].dropna()
    by = g.groupby("date", sort=False)
    a, b = by[score].rank(), by[ret].rank()
    a = a - a.groupby(g["date"]).transform("mean")
    b = b - b.groupby(g["date"]).transform("mean")
    sums = pd.DataFrame({"ab": a * b, "aa": a * a, "bb": b * b, "n": 1.0}).groupby(g["date"]).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = sums["ab"] / np.sqrt(sums["aa"] * sums["bb"])
    ok = (sums["n"] >= MIN_NAMES) & (sums["aa"] > 0) & (sums["bb"] > 0)
    days = pd.Index(frame["date"].unique()).sort_values()
    return ic.where(ok).reindex(days).astype("float64").rename(score).rename_axis("date")


def overlap_lag(days: Sequence[Any], horizon_days: int) -> int:
    """Newey-West lags for horizon-long returns sampled at the days' median spacing."""
    d = pd.to_datetime(pd.Series(sorted(set(days))))
    if len(d) < 2:
        return 0
    gap = float(d.diff().dt.days.dropna().median())
    return max(0, math.ceil(horizon_days / max(gap, 1.0)) - 1)


def newey_west_t(values: Sequence[float] | pd.Series, lag: int) -> float | None:
    """t-statistic of the mean with Newey-West (Bartlett kernel) standard errors, ``lag`` lags.

    statsmodels' ``OLS(v, ones).fit(cov_type="HAC", cov_kwds={"maxlags": lag}).tvalues[0]``,
    replayed in its numpy operations and order (``pinv_extended``, ``cov_hac_simple`` without
    correction), so the figure is statsmodels' to the bit (the tests compare them): importing
    statsmodels' OLS (formulaic and the model machinery) cost 0.1-0.2 s of every report's CPU
    for this one regression on a constant. ``None`` with fewer than 2 values or no variation.
    """
    v = pd.Series(values, dtype="float64").dropna().to_numpy()
    if len(v) < 2 or np.ptp(v) == 0:
        return None
    lags = int(lag)
    x = np.ones((len(v), 1))
    u, s, vt = np.linalg.svd(x, False)
    s = np.where(s > 1e-15 * np.maximum.reduce(s), 1.0 / s, 0.0)
    pinv = np.dot(np.transpose(vt), np.multiply(s[:, np.newaxis], np.transpose(u)))
    bread = np.dot(pinv, np.transpose(pinv))  # (X'X)^-1, statsmodels' normalized_cov_params
    params = np.dot(pinv, v)
    xu = x * (v - np.dot(x, params))[:, None]
    weights = 1 - np.arange(lags + 1) / (lags + 1.0)
    meat = weights[0] * np.dot(xu.T, xu)
    for k in range(1, lags + 1):
        s_k = np.dot(xu[k:].T, xu[:-k])
        meat += weights[k] * (s_k + s_k.T)
    cov = np.dot(np.dot(bread, meat), bread.T)
    with np.errstate(divide="ignore", invalid="ignore"):  # silent, as statsmodels' tvalues
        return float((params / np.sqrt(np.diag(cov)))[0])


def quantile_labels(frame: pd.DataFrame, score: str, n_quantiles: int = 5) -> pd.Series:
    """Quantile (1 = lowest score) of each row within its date, by ``pd.qcut``'s rule as alphalens.

    A day whose scores cannot be cut into ``n_quantiles`` distinct bins gets NaN labels. The rule
    is ``pd.qcut(v, n, labels=False) + 1`` spelt out in numpy (edges by ``np.quantile``, bins
    closed on the right, the lowest edge included), because a ``qcut`` call per date cost
    seconds per report; the tests hold it equal to ``pd.qcut`` and to alphalens. The edges of
    all days with the same number of scores come from one ``np.quantile`` along the rows (the
    same order statistics and interpolation as one call per day: equal to the bit).
    """
    vals = frame[score].to_numpy(dtype="float64")
    out = np.full(len(vals), np.nan)
    cuts = np.linspace(0, 1, n_quantiles + 1)  # pandas' quantile: np.quantile on these
    by_size: dict[int, list[np.ndarray]] = {}  # days' positions of their scores, by count
    for idx in frame.groupby("date", sort=False).indices.values():
        pos = idx[~np.isnan(vals[idx])]
        if len(pos) >= n_quantiles:
            by_size.setdefault(len(pos), []).append(pos)
    for days in by_size.values():
        pos = np.vstack(days)
        v = vals[pos]
        edges = np.quantile(v, cuts, axis=1, method="linear").T
        ordered = np.sort(edges, axis=1)  # duplicate edges (NaN equal to NaN, as np.unique):
        lo, hi = ordered[:, :-1], ordered[:, 1:]  # too many ties to cut
        cut = ~((lo == hi) | (np.isnan(lo) & np.isnan(hi))).any(axis=1)
        for p, row, e in zip(pos[cut], v[cut], edges[cut], strict=True):
            ids = np.searchsorted(e, row, side="left")
            ids[row == e[0]] = 1
            out[p] = ids
    return pd.Series(out, index=frame.index, name=score)


def quantile_returns(
    frame: pd.DataFrame, score: str, n_quantiles: int = 5, ret: str = RETURN
) -> pd.DataFrame:
    """Mean forward return per date (rows) and quantile (columns 1..n); rows without a return
    are left out."""
    _check(frame, [score])
    q = quantile_labels(frame, score, n_quantiles)
    df = pd.DataFrame({"date": frame["date"], "q": q, "r": frame[ret]}).dropna()
    out = df.groupby(["date", "q"])["r"].mean().unstack("q")
    out.columns = [int(c) for c in out.columns]
    return out.reindex(columns=range(1, n_quantiles + 1))


def rank_autocorrelation(frame: pd.DataFrame, score: str) -> pd.Series:
    """Correlation of each day's score ranks with the previous day's, over common symbols
    (alphalens' ``factor_rank_autocorrelation``); the first day is NaN."""
    ranks = frame.assign(_r=frame.groupby("date")[score].rank())
    wide = ranks.pivot_table(index="date", columns="symbol", values="_r", aggfunc="first")
    wide = wide.sort_index()
    return wide.corrwith(wide.shift(1), axis=1).rename(score)


CONSTANT = "constant score: ranks nothing (no IC)"


def verdict(t: float | None, n_days: int, *, constant: bool = False) -> str:
    """Plain words for a t-statistic (the rule the report and the CLI print)."""
    if constant:
        return CONSTANT
    if t is None or n_days < MIN_DAYS:
        return f"too few days to judge ({n_days} known)"
    if t >= T_THRESHOLD:
        return "information: higher score, higher return (t >= 2)"
    if t <= -T_THRESHOLD:
        return "information, inverted: higher score, lower return (t <= -2)"
    return NO_EVIDENCE


def _constant(frame: pd.DataFrame, score: str) -> bool:
    """True when the score never varies across symbols on any day (the zero baseline)."""
    spread = frame.groupby("date")[score].nunique()
    return bool(len(spread)) and bool((spread <= 1).all())


def _num(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


@dataclass
class Evaluation:
    """Per-day figures (long: one row per date and score) and the per-score summary."""

    per_day: pd.DataFrame
    summary: dict[str, dict[str, Any]]
    horizon_days: int
    n_quantiles: int
    days_known: int
    days_pending: int

    def to_json(self) -> dict[str, Any]:
        """JSON-able (no NaN): summary, and per-day rows with ``None`` for undefined figures."""
        rows = [
            {k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in self.per_day.assign(date=self.per_day["date"].astype(str)).to_dict("records")
        ]
        return {
            "horizon_days": self.horizon_days,
            "n_quantiles": self.n_quantiles,
            "days_known": self.days_known,
            "days_not_yet_known": self.days_pending,
            "t_threshold": T_THRESHOLD,
            "scores": self.summary,
            "per_day": rows,
        }


def summarize(
    frame: pd.DataFrame, score: str, *, horizon_days: int, n_quantiles: int = 5
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One score's summary and its per-day rows (``ic``, ``spread``, ``rank_autocorr``)."""
    ic = rank_ic_by_day(frame, score)
    qr = quantile_returns(frame, score, n_quantiles)
    spread = (qr[n_quantiles] - qr[1]).reindex(ic.index)
    auto = rank_autocorrelation(frame, score).reindex(ic.index)
    known = ic.dropna()
    lag = overlap_lag(list(ic.index), horizon_days)
    t = newey_west_t(known, lag)
    std = float(known.std(ddof=1)) if len(known) > 1 else math.nan
    summary = {
        "n_days": int(len(known)),
        "mean_ic": _num(known.mean()) if len(known) else None,
        "ic_std": _num(std),
        "icir": _num(known.mean() / std) if len(known) > 1 and std > 0 else None,
        "t_nw": t,
        "nw_lag": lag,
        "hit_rate": _num((known > 0).mean()) if len(known) else None,
        "quantile_mean_returns": {str(q): _num(qr[q].mean()) for q in qr.columns},
        "spread_mean": _num(spread.mean()),
        "spread_t_nw": newey_west_t(spread, lag),
        "turnover": _num(1.0 - auto.mean()) if auto.notna().any() else None,
        "verdict": verdict(t, len(known), constant=_constant(frame, score)),
    }
    per_day = pd.DataFrame(
        {
            "date": ic.index,
            "score": score,
            "ic": ic.to_numpy(),
            "spread": spread.to_numpy(),
            "rank_autocorr": auto.to_numpy(),
        }  # fmt: skip
    )
    for q in qr.columns:
        per_day[f"q{q}_return"] = qr[q].reindex(ic.index).to_numpy()
    return summary, per_day


def evaluate(
    frame: pd.DataFrame,
    scores: Sequence[str],
    *,
    horizon_days: int,
    n_quantiles: int = 5,
) -> Evaluation:
    """Every score's cross-sectional figures over the frame's days.

    ``frame``: ``date``, ``symbol``, the ``scores`` columns and :data:`RETURN` (NaN while not yet
    known). Days whose returns are all unknown are listed with ``known = False`` and no figures.

    Raises
    ------
    EvaluationError
        Missing columns, fewer than 2 symbols, or no day with a known return.
    """
    _check(frame, scores)
    if frame["symbol"].nunique() < 2:
        raise EvaluationError(
            f"a cross-sectional evaluation needs at least 2 symbols; the universe has "
            f"{frame['symbol'].nunique()}"
        )
    known_days = frame[RETURN].notna().groupby(frame["date"]).any()  # per date: any known
    if not known_days.any():
        raise EvaluationError(
            f"no forward return is known yet: every day is within {horizon_days} days of the "
            "end of the data (the horizon is longer than the period)"
        )
    summary, parts = {}, []
    for s in scores:
        summary[s], part = summarize(frame, s, horizon_days=horizon_days, n_quantiles=n_quantiles)
        parts.append(part)
    per_day = pd.concat(parts, ignore_index=True)
    per_day.insert(2, "known", per_day["date"].map(known_days).astype(bool))
    per_day["status"] = np.where(per_day["known"], "known", "not yet known")
    return Evaluation(
        per_day.sort_values(["date", "score"], kind="stable").reset_index(drop=True),
        summary,
        int(horizon_days),
        int(n_quantiles),
        int(known_days.sum()),
        int((~known_days).sum()),
    )
