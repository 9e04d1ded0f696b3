"""Cross-sectional statistics: equal to scipy/pandas by hand and to alphalens; planted vs noise."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from sentinel.ml.evaluation import (
    CONSTANT,
    NO_EVIDENCE,
    RETURN,
    EvaluationError,
    evaluate,
    newey_west_t,
    overlap_lag,
    quantile_returns,
    rank_autocorrelation,
    rank_ic_by_day,
)


def _frame(n_days: int = 30, n_sym: int = 20, beta: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Weekly days; the forward return is ``beta * signal + noise`` (beta 0 = pure noise)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2020-01-06", periods=n_days, freq="7D")
    rows = []
    for d in days:
        sig = rng.normal(size=n_sym)
        ret = beta * sig + rng.normal(size=n_sym)
        rows += [(d, f"S{i:02d}", sig[i], rng.normal(), 0.01 * ret[i]) for i in range(n_sym)]
    return pd.DataFrame(rows, columns=["date", "symbol", "signal", "noise", RETURN])


def test_ic_and_quantiles_equal_a_direct_computation():
    f = _frame(8, 12, beta=0.5)
    ic = rank_ic_by_day(f, "signal")
    for d, g in f.groupby("date"):
        assert ic[d] == pytest.approx(spearmanr(g["signal"], g[RETURN]).statistic, abs=1e-12)
    qr = quantile_returns(f, "signal", 4)
    for d, g in f.groupby("date"):
        order = g.sort_values("signal")[RETURN].to_numpy()  # 12 names: 3 per quartile
        np.testing.assert_allclose(qr.loc[d].to_numpy(), order.reshape(4, 3).mean(1))


def test_ic_quantiles_and_autocorrelation_equal_alphalens():
    al = pytest.importorskip("alphalens")
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-04", periods=40)
    syms = [f"A{i}" for i in range(10)]
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (40, 10)), axis=0)), index=dates, columns=syms
    )
    factor = pd.Series(
        rng.normal(size=40 * 10),
        index=pd.MultiIndex.from_product([dates, syms], names=["date", "asset"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fd = al.utils.get_clean_factor_and_forward_returns(
            factor, prices, quantiles=5, periods=(5,), max_loss=1.0
        )
        al_ic = al.performance.factor_information_coefficient(fd)["5D"]
        al_q, _ = al.performance.mean_return_by_quantile(fd, by_date=True, demeaned=False)
        al_auto = al.performance.factor_rank_autocorrelation(fd, period=1)
    frame = pd.DataFrame(
        {
            "date": fd.index.get_level_values("date"),
            "symbol": fd.index.get_level_values("asset"),
            "f": fd["factor"].to_numpy(),
            RETURN: fd["5D"].to_numpy(),
        }  # fmt: skip
    )
    np.testing.assert_allclose(rank_ic_by_day(frame, "f").to_numpy(), al_ic.to_numpy())
    ours = quantile_returns(frame, "f", 5).stack()
    theirs = al_q["5D"].swaplevel().sort_index()
    np.testing.assert_allclose(ours.sort_index().to_numpy(), theirs.to_numpy())
    np.testing.assert_allclose(
        rank_autocorrelation(frame, "f").to_numpy(), al_auto.to_numpy(), equal_nan=True
    )


def test_newey_west_against_a_direct_formula():
    v = np.random.default_rng(5).normal(0.02, 0.1, 60)
    lag = 2
    e = v - v.mean()
    s = e @ e / len(v)
    for j in range(1, lag + 1):
        s += 2 * (1 - j / (lag + 1)) * (e[j:] @ e[:-j]) / len(v)
    assert newey_west_t(v, lag) == pytest.approx(v.mean() / np.sqrt(s / len(v)), rel=1e-10)
    assert newey_west_t([0.1, 0.1, 0.1], 1) is None
    weekly = pd.date_range("2020-01-06", periods=10, freq="7D")
    assert overlap_lag(list(weekly), 14) == 1 and overlap_lag(list(weekly), 7) == 0


def _statsmodels_t(values: np.ndarray, lag: int) -> float:
    from statsmodels.regression.linear_model import OLS

    v = values[~np.isnan(values)]
    return float(OLS(v, np.ones(len(v))).fit(cov_type="HAC", cov_kwds={"maxlags": lag}).tvalues[0])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e3, 1e3), st.just(np.nan), st.just(0.5)), min_size=2,
             max_size=80),
    st.integers(0, 12),
    st.floats(1e-9, 1e3),
)  # fmt: skip
def test_newey_west_is_statsmodels_hac_to_the_bit(values, lag, scale):
    """The numpy replay equals statsmodels' HAC OLS exactly (ties, NaN, lags past the length)."""
    v = np.asarray(values, dtype=np.float64) * scale
    known = v[~np.isnan(v)]
    if len(known) < 2 or np.ptp(known) == 0:
        assert newey_west_t(v, lag) is None
        return
    ours, theirs = newey_west_t(v, lag), _statsmodels_t(v, lag)
    assert ours == theirs or (np.isnan(ours) and np.isnan(theirs))


def test_planted_signal_is_found_and_noise_is_called_noise():
    ev = evaluate(_frame(40, 30, beta=0.3, seed=1), ["signal", "noise"], horizon_days=7)
    sig, noise = ev.summary["signal"], ev.summary["noise"]
    assert sig["mean_ic"] > 0.15 and sig["t_nw"] > 2 and sig["verdict"].startswith("information")
    assert sig["spread_mean"] > 0 and sig["hit_rate"] > 0.7
    assert abs(noise["mean_ic"]) < 0.1 and abs(noise["t_nw"]) < 2
    assert noise["verdict"] == NO_EVIDENCE
    # a constant score (the zero baseline) ranks nothing: no IC, and the verdict says why
    flat = evaluate(_frame(10, 10, seed=3).assign(zero=0.0), ["zero"], horizon_days=7)
    assert flat.summary["zero"]["mean_ic"] is None
    assert flat.summary["zero"]["verdict"] == CONSTANT
    # pure-noise returns: the signal too carries no information
    pure = evaluate(_frame(40, 30, beta=0.0, seed=2), ["signal"], horizon_days=7)
    assert pure.summary["signal"]["verdict"] == NO_EVIDENCE


def test_unknown_returns_are_listed_and_never_used():
    f = _frame(12, 10, beta=0.3, seed=4)
    last = sorted(f["date"].unique())[-2:]
    f.loc[f["date"].isin(last), RETURN] = np.nan
    ev = evaluate(f, ["signal"], horizon_days=14)
    assert (ev.days_known, ev.days_pending) == (10, 2)
    pending = ev.per_day[~ev.per_day["known"]]
    assert set(pending["status"]) == {"not yet known"} and pending["ic"].isna().all()
    assert ev.summary["signal"]["n_days"] == 10
    payload = ev.to_json()
    import json

    json.dumps(payload, allow_nan=False)
    assert payload["days_not_yet_known"] == 2


@settings(max_examples=15, deadline=None)
@given(st.floats(-1e3, 1e3, allow_nan=False), st.integers(0, 9))
def test_figures_ignore_whatever_the_unknown_returns_would_be(value, row):
    """Future perturbation: a not-yet-known return (here: a value planted in a pending day) that
    the caller masks as NaN changes nothing; only the known days enter the figures."""
    f = _frame(10, 10, beta=0.3, seed=6)
    last = f["date"].max()
    base = f.copy()
    base.loc[base["date"] == last, RETURN] = np.nan
    perturbed = base.copy()
    perturbed.loc[perturbed["date"] == last, "signal"] += value  # the pending day's scores move
    a = evaluate(base, ["signal"], horizon_days=7).summary["signal"]
    b = evaluate(perturbed, ["signal"], horizon_days=7).summary["signal"]
    for key in ("n_days", "mean_ic", "t_nw", "hit_rate", "spread_mean", "icir"):
        assert a[key] == b[key]


def test_bad_input_says_what_is_wrong():
    f = _frame(5, 10)
    with pytest.raises(EvaluationError, match="at least 2 symbols"):
        evaluate(f[f["symbol"] == "S00"], ["signal"], horizon_days=7)
    with pytest.raises(EvaluationError, match="no forward return is known yet"):
        evaluate(f.assign(**{RETURN: np.nan}), ["signal"], horizon_days=7)
    with pytest.raises(EvaluationError, match="lacks columns: ml_score"):
        evaluate(f, ["ml_score"], horizon_days=7)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(-3, 3).map(float), st.floats(-1, 1)),
                 min_size=0, max_size=14),
        min_size=1, max_size=5,
    ),
    st.integers(2, 5),
)  # fmt: skip
def test_quantile_labels_follow_pd_qcut_with_ties_and_gaps(days, n_q):
    from sentinel.ml.evaluation import quantile_labels

    rows = [(pd.Timestamp("2021-01-04") + pd.Timedelta(days=7 * i), v) for i, vs in
            enumerate(days) for v in vs]  # fmt: skip
    f = pd.DataFrame(rows, columns=["date", "s"], dtype=object).astype({"s": "float64"})
    if f.empty:
        return
    f["date"] = pd.to_datetime(f["date"])

    def ref(s: pd.Series) -> pd.Series:  # the per-date pd.qcut the numpy rule replaced
        v = s.dropna()
        if len(v) < n_q:
            return pd.Series(np.nan, index=s.index)
        try:
            return (pd.qcut(v, n_q, labels=False) + 1).reindex(s.index).astype("float64")
        except ValueError:
            return pd.Series(np.nan, index=s.index)

    want = f.groupby("date", sort=False)["s"].transform(ref)
    np.testing.assert_array_equal(quantile_labels(f, "s", n_q).to_numpy(), want.to_numpy())


def _quantile_labels_per_day(frame: pd.DataFrame, score: str, n_q: int) -> np.ndarray:
    """The former loop: one np.quantile and one np.unique per date."""
    vals = frame[score].to_numpy(dtype="float64")
    out = np.full(len(vals), np.nan)
    cuts = np.linspace(0, 1, n_q + 1)
    for idx in frame.groupby("date", sort=False).indices.values():
        v = vals[idx]
        ok = ~np.isnan(v)
        if ok.sum() < n_q:
            continue
        v = v[ok]
        edges = np.quantile(v, cuts, method="linear")
        if len(np.unique(edges)) < len(edges):
            continue
        ids = np.searchsorted(edges, v, side="left")
        ids[v == edges[0]] = 1
        out[idx[ok]] = ids
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 12), st.integers(1, 60), st.integers(2, 10), st.integers(0, 2**31),
    st.sampled_from([0.0, 0.1, 0.4]), st.sampled_from([3, 50, 10**6]),
    st.sampled_from([0.0, 0.02, 0.3]),
)  # fmt: skip
def test_quantile_labels_of_stacked_days_equal_one_day_at_a_time(
    n_days, n_sym, n_q, seed, holes, levels, infinite
):
    """Days with the same number of scores share one np.quantile along the rows: the labels are
    those of one call per day (ties, gaps, infinite scores, days too small to cut)."""
    from sentinel.ml.evaluation import quantile_labels

    rng = np.random.default_rng(seed)
    v = rng.integers(0, levels, size=n_days * n_sym) / levels
    v[rng.random(len(v)) < holes] = np.nan
    v[rng.random(len(v)) < infinite] = np.inf
    days = np.repeat(pd.date_range("2021-01-04", periods=n_days, freq="7D"), n_sym)
    f = pd.DataFrame({"date": days, "s": v}).sample(frac=1.0, random_state=seed % 1000)
    with np.errstate(invalid="ignore"):  # inf - inf inside np.quantile's interpolation
        want = _quantile_labels_per_day(f, "s", n_q)
        np.testing.assert_array_equal(quantile_labels(f, "s", n_q).to_numpy(), want)


def test_evaluating_scores_does_not_import_statsmodels():
    """The Newey-West t is numpy: a report's evaluation no longer loads statsmodels (with its
    formula machinery, ~0.15 s of a run's single-threaded CPU)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from sentinel.ml.evaluation import RETURN, evaluate\n"
        "rng = np.random.default_rng(0)\n"
        "days = np.repeat(pd.date_range('2021-01-04', periods=12, freq='7D'), 8)\n"
        "f = pd.DataFrame({'date': days, 'symbol': np.tile(list('ABCDEFGH'), 12),\n"
        "                  's': rng.normal(size=96), RETURN: rng.normal(size=96)})\n"
        "ev = evaluate(f, ['s'], horizon_days=14)\n"
        "assert ev.summary['s']['t_nw'] is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'statsmodels'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
