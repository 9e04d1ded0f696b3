"""How much a sweep's best point can be trusted: Sharpe intervals, deflated Sharpe, PBO.

A grid of backtests always has a best point; these statistics say whether it is better than luck.

* :func:`sharpe_intervals`: a confidence interval for each point's Sharpe ratio from a circular
  block bootstrap of its daily returns (blocks keep the short-range dependence of daily returns).
  All points are resampled with the same day indices, so differences between points are paired.
* :func:`deflated_sharpe_ratio`: the probability that the selected Sharpe ratio beats the best of
  ``N`` unskilled trials (Bailey & López de Prado 2014, "The Deflated Sharpe Ratio").
* :func:`pbo_cscv`: the probability of backtest overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, López de Prado & Zhu 2015): how often the in-sample best
  point ranks in the bottom half out of sample.

Sharpe ratios here have risk-free rate 0 and ddof 1, as in :mod:`engine.metrics`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from math import comb, e, sqrt
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kurtosis, norm, skew

EULER_GAMMA = 0.5772156649015329
#: Values per block of resampled returns held at once (8 bytes each: about 32 MB).
_CHUNK_VALUES = 4_000_000


def sharpe(returns: np.ndarray, periods_per_year: int = 252, axis: int = -1) -> np.ndarray:
    """Annualised Sharpe ratio (risk-free 0, ddof 1) along ``axis``; NaN where flat."""
    r = np.asarray(returns, dtype=float)
    sd = r.std(axis=axis, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, r.mean(axis=axis) / sd * sqrt(periods_per_year), np.nan)


def block_length(n_obs: int) -> int:
    """The usual n^(1/3) rule for the block length of a block bootstrap (at least 1)."""
    return max(1, round(n_obs ** (1 / 3)))


def circular_block_indices(
    n_obs: int, n_boot: int, block: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_boot`` resamples of ``range(n_obs)`` made of wrapped blocks of ``block`` days."""
    n_blocks = -(-n_obs // block)
    starts = rng.integers(0, n_obs, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n_obs
    return idx.reshape(n_boot, -1)[:, :n_obs]


@dataclass(frozen=True)
class SharpeIntervals:
    """Per-point Sharpe ratios, their bootstrap intervals, and the paired bootstrap draws."""

    sharpe: np.ndarray  # (N,)
    low: np.ndarray  # (N,)
    high: np.ndarray  # (N,)
    draws: np.ndarray  # (n_boot, N): Sharpe of each point on each resample (same days)
    level: float
    block: int

    def indistinguishable(self, best: int) -> list[int]:
        """Points whose paired interval of ``SR[best] - SR[j]`` contains 0 (not told apart)."""
        tail = (1 - self.level) / 2
        diff = self.draws[:, [best]] - self.draws
        lo, hi = _quantile(diff, tail), _quantile(diff, 1 - tail)
        return [j for j in range(diff.shape[1]) if j != best and lo[j] <= 0 <= hi[j]]


def sharpe_intervals(
    returns: np.ndarray,
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    block: int | None = None,
    seed: int = 0,
    periods_per_year: int = 252,
) -> SharpeIntervals:
    """Percentile intervals of each column's annualised Sharpe ratio (circular block bootstrap).

    ``returns`` is (days, points): every point's daily returns on the same days.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim == 1:
        r = r[:, None]
    n_obs = r.shape[0]
    if n_obs < 3:
        raise ValueError(f"a Sharpe interval needs at least 3 daily returns, got {n_obs}")
    block = block or block_length(n_obs)
    idx = circular_block_indices(n_obs, n_boot, block, np.random.default_rng(seed))
    chunk = max(1, _CHUNK_VALUES // (n_obs * r.shape[1]))  # bounded memory on long, wide grids
    draws = np.concatenate(
        [sharpe(r[idx[i : i + chunk]], periods_per_year, axis=1) for i in range(0, n_boot, chunk)]
    )  # (n_boot, N)
    tail = (1 - level) / 2
    return SharpeIntervals(
        sharpe=sharpe(r, periods_per_year, axis=0),
        low=_quantile(draws, tail),
        high=_quantile(draws, 1 - tail),
        draws=draws,
        level=level,
        block=block,
    )


def _quantile(draws: np.ndarray, q: float) -> np.ndarray:
    """Per-column quantile ignoring NaN; NaN for a column with no Sharpe ratio (a flat point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column: NaN is the answer
        return np.nanquantile(draws, q, axis=0)


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """The expected best Sharpe ratio of ``n_trials`` unskilled trials (the DSR's SR0)."""
    if n_trials < 2:
        return 0.0
    z1 = norm.ppf(1 - 1 / n_trials)
    z2 = norm.ppf(1 - 1 / (n_trials * e))
    return sqrt(sr_variance) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe_ratio(
    sr: float,
    *,
    sr_variance: float,
    n_trials: int,
    n_obs: int,
    skewness: float = 0.0,
    kurt: float = 3.0,
) -> float:
    """P(true Sharpe > SR0): the probabilistic Sharpe ratio against the best of ``n_trials``.

    All Sharpe figures per period (not annualised): ``sr`` of the selected point,
    ``sr_variance`` the variance of the trials' Sharpe ratios; ``kurt`` is plain (normal = 3).
    """
    sr0 = expected_max_sharpe(sr_variance, n_trials)
    denom = 1 - skewness * sr + (kurt - 1) / 4 * sr**2
    if denom <= 0 or n_obs < 2:
        return float("nan")
    return float(norm.cdf((sr - sr0) * sqrt(n_obs - 1) / sqrt(denom)))


def selected_dsr(returns: np.ndarray, best: int) -> dict[str, float]:
    """The deflated Sharpe ratio of column ``best`` among all columns (the sweep's trials)."""
    r = np.asarray(returns, dtype=float)
    srs = sharpe(r, periods_per_year=1, axis=0)
    x = r[:, best]
    finite = srs[np.isfinite(srs)]
    var = float(np.var(finite, ddof=1)) if finite.size > 1 else 0.0
    sk, ku = float(skew(x)), float(kurtosis(x, fisher=False))
    dsr = deflated_sharpe_ratio(
        float(srs[best]),
        sr_variance=var,
        n_trials=r.shape[1],
        n_obs=r.shape[0],
        skewness=sk,
        kurt=ku,
    )
    return {
        "dsr": dsr,
        "sr0_annual": expected_max_sharpe(var, r.shape[1]) * sqrt(252),
        "n_trials": float(r.shape[1]),
        "skewness": sk,
        "kurtosis": ku,
    }


def pbo_cscv(returns: np.ndarray, n_splits: int = 16, max_combinations: int = 20_000) -> float:
    """Probability of backtest overfitting: CSCV over ``n_splits`` blocks of days.

    Every half of the blocks is in turn the in-sample set; the in-sample best column's rank out of
    sample gives a logit; PBO is the share of logits <= 0 (best in-sample, bottom half outside).
    """
    r = np.asarray(returns, dtype=float)
    n_obs, n_points = r.shape
    if n_points < 2:
        raise ValueError("PBO needs at least two points")
    n_splits = min(n_splits, n_obs // 2 * 2)
    n_splits -= n_splits % 2
    if n_splits < 2:
        raise ValueError(f"PBO needs at least 4 daily returns, got {n_obs}")
    blocks = np.array_split(np.arange(n_obs), n_splits)
    s1 = np.array([r[b].sum(axis=0) for b in blocks])
    s2 = np.array([(r[b] ** 2).sum(axis=0) for b in blocks])
    cnt = np.array([len(b) for b in blocks], dtype=float)
    tot1, tot2, tot_n = s1.sum(0), s2.sum(0), cnt.sum()
    half = n_splits // 2
    combos = combinations(range(n_splits), half)
    if comb(n_splits, half) > max_combinations:  # a seeded subset keeps the cost bounded
        rng = np.random.default_rng(0)
        combos = (tuple(sorted(rng.choice(n_splits, half, replace=False)))
                  for _ in range(max_combinations))  # fmt: skip
    chosen = np.array(list(combos))
    is1, is2, isn = s1[chosen].sum(1), s2[chosen].sum(1), cnt[chosen].sum(1)[:, None]
    sr_is = _sr_from_sums(is1, is2, isn)
    sr_oos = _sr_from_sums(tot1 - is1, tot2 - is2, tot_n - isn)
    best = np.nanargmax(np.where(np.isnan(sr_is), -np.inf, sr_is), axis=1)
    oos = np.where(np.isnan(sr_oos), -np.inf, sr_oos)
    rank = (oos < oos[np.arange(len(best)), best][:, None]).sum(1) + 1  # 1 = worst
    omega = rank / (n_points + 1)
    logits = np.log(omega / (1 - omega))
    return float(np.mean(logits <= 0))


def _sr_from_sums(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    mean = s1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (s2 - n * mean**2) / (n - 1)
        return np.where(var > 0, mean / np.sqrt(np.maximum(var, 0)), np.nan)


# -- a sweep's points ------------------------------------------------------------------------------
def _returns_matrix(points: list[dict[str, Any]]) -> pd.DataFrame:
    """Daily returns of each point (columns by point key) on the days they all share."""
    cols = {}
    for p in points:
        eq = p.get("equity") or {}
        if len(eq.get("values") or ()) >= 2:
            s = pd.Series(eq["values"], index=pd.to_datetime(eq["dates"]), dtype=float)
            cols[p["key"]] = s.pct_change().iloc[1:]
    return pd.DataFrame(cols).dropna()


def grid_statistics(
    points: list[dict[str, Any]],
    selected_label: str | None,
    selection_period: str,
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Sharpe intervals for every point, and DSR, PBO and look-alikes for the selected one.

    Intervals are per period (each period's points share their days); the deflated Sharpe ratio
    and PBO use the selection period only, where the choice was made.
    """
    out: dict[str, Any] = {"level": level, "n_boot": n_boot, "intervals": {}, "selected": None}
    for period in dict.fromkeys(p["period"] for p in points):
        group = [p for p in points if p["period"] == period]
        rets = _returns_matrix(group)
        if rets.shape[0] < 3 or rets.shape[1] == 0:
            continue
        ci = sharpe_intervals(rets.to_numpy(), level=level, n_boot=n_boot, seed=seed)
        out["block_days"] = ci.block
        for j, key in enumerate(rets.columns):
            out["intervals"][key] = [_num(ci.low[j]), _num(ci.high[j])]
        if period != selection_period or selected_label is None:
            continue
        label_of = {p["key"]: p["label"] for p in group}
        keys = list(rets.columns)
        best = next((j for j, k in enumerate(keys) if label_of[k] == selected_label), None)
        if best is None:
            continue
        r = rets.to_numpy()
        sel: dict[str, Any] = {
            "label": selected_label, "period": period, "n_points": len(keys),
            "n_days": int(r.shape[0]),
            "indistinguishable": [label_of[keys[j]] for j in ci.indistinguishable(best)],
            "pbo": _num(pbo_cscv(r)) if len(keys) >= 2 and r.shape[0] >= 4 else None,
        }  # fmt: skip
        sel.update({k: _num(v) for k, v in selected_dsr(r, best).items()})
        out["selected"] = sel
    return out


def verdict(stats: dict[str, Any]) -> list[str]:
    """The statistics in words: can the selected point be told apart, and is it luck?"""
    sel = stats.get("selected")
    if not sel:
        return []
    pct = f"{stats['level']:.0%}"
    others = sel["n_points"] - 1
    same = len(sel["indistinguishable"])
    lines = []
    if others and same == others:
        lines.append(
            f"The points cannot be told apart: for every other point the {pct} bootstrap interval "
            f"of its Sharpe difference from the selected point includes zero."
        )
    elif others and same == 0:
        lines.append(
            f"The selected point can be told apart from each of the {others} other points (the "
            f"{pct} bootstrap interval of every Sharpe difference excludes zero)."
        )
    elif others:
        lines.append(
            f"The selected point cannot be told apart from {same} of the {others} other points "
            f"(their {pct} bootstrap interval of the Sharpe difference includes zero)."
        )
    dsr = sel.get("dsr")
    if dsr is not None:
        verdict_ = "significant" if dsr >= stats["level"] else "not significant"
        lines.append(
            f"Deflated Sharpe ratio {dsr:.2f} after {others + 1} trials ({verdict_} at {pct}): "
            f"with Sharpe ratios as spread as these, the best of {others + 1} trials without "
            f"skill would reach about {sel['sr0_annual']:.2f} by luck alone."
        )
    pbo = sel.get("pbo")
    if pbo is not None:
        lines.append(
            f"Probability of backtest overfitting (CSCV): {pbo:.0%}"
            + (" - the in-sample best is as likely as not to be below the median out of sample."
               if pbo >= 0.5 else ".")
        )  # fmt: skip
    return lines


def _num(v: float) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None
