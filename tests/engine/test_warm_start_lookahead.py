"""``ml.warm_start`` carries networks from one retrain to the next: still nothing after T matters.

The real-data run of ``test_correctness`` (6 stocks, quarterly retrains, counts picked every
second retrain, so every other retrain resumes the previous networks), once on the clean store
and once with every price after T scrambled: everything decided up to T must be identical.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.backtest import run_backtest
from tests.engine.test_correctness import T_REAL, _real_cfg, _real_store, real_files  # noqa: F401

WARM = {"ml.select_every": 2, "ml.warm_start": 0.5}


def test_warm_refits_ignore_the_future(real_files, tmp_path: Path) -> None:  # noqa: F811
    t, ts = T_REAL, pd.Timestamp(T_REAL)
    cfg = _real_cfg().with_updates(WARM)
    assert cfg.ml.warm_start == 0.5 and cfg.ml.select_every == 2
    clean = _real_store(tmp_path / "a.db", real_files, None)
    a = run_backtest(cfg, store=clean, save=False)
    b = run_backtest(cfg, store=_real_store(tmp_path / "b.db", real_files, t), save=False)
    before = [d for d in a.log.retrains if d <= t]
    assert len(before) >= 2, "no warm refit before T: the test proves little"
    used_a = a.predictions[a.predictions["date"] <= ts].reset_index(drop=True)
    used_b = b.predictions[b.predictions["date"] <= ts].reset_index(drop=True)
    assert used_a["ml_score"].notna().any()
    pd.testing.assert_frame_equal(used_a, used_b, check_exact=True)
    pd.testing.assert_frame_equal(a.equity.loc[:ts], b.equity.loc[:ts], check_exact=True)
    # the warm refits did change the models (so the equality above is about warm models) ...
    cold_cfg = _real_cfg().with_updates({"ml.select_every": 2, "end": "2015-05-29"})  # past T
    cold = run_backtest(cold_cfg, store=clean, save=False)

    def between_warm_refit_and_t(p: pd.DataFrame) -> pd.Series:
        rows = p[(p["date"] > pd.Timestamp(before[1])) & (p["date"] <= ts)]
        return rows.set_index(["date", "symbol"])["ml_score"]

    warm, fresh = (
        between_warm_refit_and_t(a.predictions),
        between_warm_refit_and_t(cold.predictions),
    )
    assert len(warm) and warm.index.equals(fresh.index) and not (warm == fresh).all()
    # ... and the perturbation reached the run after T
    assert (
        not a.predictions[a.predictions["date"] > ts]
        .reset_index(drop=True)
        .equals(b.predictions[b.predictions["date"] > ts].reset_index(drop=True))
    )
