"""End-to-end backtests on a small demo store: outputs, ledger invariants, and the proof that a
run's decisions up to T do not change when everything after T is scrambled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from engine.backtest import run_backtest, summary_lines
from engine.config import RunConfig
from engine.session import LOOKAHEAD_WARNING
from sentinel.db import Store
from sentinel.errors import ConfigError
from tests.conftest import make_demo_db
from tests.future import scramble_after


def _cfg(**over) -> RunConfig:
    base = {
        "name": "t",
        "start": "2016-06-01",
        "end": "2017-06-30",
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 4}},
        "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward",
               "retrain": "quarterly", "min_samples": 20, "max_epochs": 3},
        "costs": {"commission_bps": 5, "min_commission": 1, "slippage_bps": 5},
        "initial_cash": 100_000,
    }  # fmt: skip
    for k, v in over.items():
        base[k] = v
    return RunConfig.model_validate(base)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("bt"), 11, 8, "2015-01-01", "2017-12-31")


@pytest.fixture(scope="module")
def wf_result(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    store = Store(f"sqlite:///{demo_db}")
    return run_backtest(_cfg(), store=store, output=out), out, store


def test_outputs_and_stored_run(wf_result):
    result, out, store = wf_result
    for name in ("metrics.json", "trades.csv", "equity.csv", "report.html", "predictions.csv"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_retrains"] == 5  # 2016Q2 .. 2017Q2
    assert result.log.retrains[0] == date(2016, 6, 3)
    run = store.records.get_backtest_run(result.db_id)
    assert run.config_hash == result.config.config_hash()
    assert run.metrics["sharpe_ratio"] == pytest.approx(metrics["sharpe_ratio"])
    assert "Demo" not in (out / "trades.csv").read_text()[:100]
    report = (out / "report.html").read_text()
    assert "ML: cross-sectional IC" in report and "XGBoost gain by feature" in report
    assert "network permutation importance" in report and "predicted vs realised" in report
    preds = result.predictions
    assert preds["ml_score"].notna().any()  # the models were used ...
    assert (preds["model_id"].dropna().str.startswith("walk_forward:")).all()
    assert set(preds["fallback"].dropna()) <= {"no model", "ml disabled for symbol", "no features"}


def test_predictions_csv_joins_the_realised_return_once_known(wf_result):
    result, out, store = wf_result
    preds = pd.read_csv(out / "predictions.csv", parse_dates=["date"])
    horizon, end = pd.Timedelta(days=result.config.ml.horizon_days), result.equity.index[-1]
    pending = preds["date"] + horizon > end
    assert pending.any() and (~pending).any()
    assert not preds.loc[pending, "known"].any()
    assert preds.loc[pending, "realised_return"].isna().all()
    assert (preds["known"] == preds["realised_return"].notna()).all()
    assert preds.loc[~pending, "known"].mean() > 0.9
    closes = store.market.get_close_panel(sorted(preds["symbol"].unique()))
    closes.index = pd.to_datetime(closes.index)
    for row in preds[preds["known"]].sample(20, random_state=3).itertuples():
        s = closes[row.symbol].dropna()
        later = s.loc[: row.date + horizon]
        assert row.realised_return == pytest.approx(later.iloc[-1] / s.loc[row.date] - 1.0)


def test_ledger_invariants(wf_result):
    result, _, _ = wf_result
    eq = result.equity
    assert (eq["cash"] >= -1e-6).all()  # no overdraft
    assert (result.weights.fillna(0) >= 0).all().all()  # long only
    trades = result.trades
    decided = {o.order_id for o in result.log.orders}
    settled = {
        f.order_id for f in result.log.settlements
    }  # delisted holdings, closed at last price
    assert set(trades["order_id"]) <= decided | settled
    trades = trades[~trades["order_id"].isin(settled)]
    # every fill happens after the day its order was decided (next open)
    decided_on = {o.order_id: o.decided_on for o in result.log.orders}
    assert all(row.date.date() > decided_on[row.order_id] for row in trades.itertuples())
    costs = trades["commission"].sum() + trades["slippage"].sum()
    assert costs > 0


def test_walk_forward_models_only_see_known_labels(wf_result):
    result, _, store = wf_result
    for d in result.log.retrains:
        known = store.signals.get_training_samples(known_by=d)
        later = store.signals.get_training_samples()
        assert (known["label_known_at"] <= pd.Timestamp(d)).all()
        assert len(later) > len(known)


def test_future_scrambled_after_t_changes_nothing_before_t(demo_db, tmp_path):
    """Run the same config on the store and on a copy whose bars after T are scrambled."""
    t = date(2016, 12, 30)
    copy = tmp_path / "future.db"
    shutil.copy(demo_db, copy)
    other = Store(f"sqlite:///{copy}")
    with other.db.transaction() as conn:
        scramble_after(other, "prices", t, 4242, conn)
        scramble_after(other, "benchmark_prices", t, 4242, conn)
    a = run_backtest(_cfg(end=date(2017, 3, 31)), store=Store(f"sqlite:///{demo_db}"), save=False)
    b = run_backtest(_cfg(end=date(2017, 3, 31)), store=other, save=False)
    days = [d for d in a.log.decisions if d <= t]
    assert len(days) > 20
    for d in days:
        pd.testing.assert_series_equal(a.log.decisions[d], b.log.decisions[d], obj=str(d))
    ta, tb = a.trades[a.trades.date <= pd.Timestamp(t)], b.trades[b.trades.date <= pd.Timestamp(t)]
    pd.testing.assert_frame_equal(ta.reset_index(drop=True), tb.reset_index(drop=True))
    ea, eb = a.equity.loc[: pd.Timestamp(t)], b.equity.loc[: pd.Timestamp(t)]
    pd.testing.assert_frame_equal(ea, eb)
    # ... and the scramble did change what came after T.
    assert not np.allclose(a.equity["equity"].iloc[-1], b.equity["equity"].iloc[-1])


def test_current_mode_is_flagged_and_off_mode_uses_wavelet_only(demo_db, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "nomodels"))
    from sentinel.settings import get_settings

    get_settings.cache_clear()
    store = Store(f"sqlite:///{demo_db}")
    cur = run_backtest(_cfg(end=date(2016, 9, 30), ml={"mode": "current"}), store=store, save=False)
    assert LOOKAHEAD_WARNING in cur.warnings
    off = run_backtest(_cfg(end=date(2016, 9, 30), ml={"mode": "off"}), store=store, save=False)
    assert off.predictions["ml_score"].isna().all()
    assert (off.predictions["blended_score"] == off.predictions["wavelet_score"]).all()
    assert off.log.retrains == []
    get_settings.cache_clear()


def test_momentum_baseline_runs_without_ml(demo_db):
    cfg = _cfg(strategy={"name": "momentum", "params": {"n": 3, "lookback": 60}},
               ml={"enabled": False}, rebalance={"every": "monthly"})  # fmt: skip
    result = run_backtest(cfg, store=Store(f"sqlite:///{demo_db}"), save=False)
    assert len(result.trades) > 0
    assert result.metrics["n_retrains"] == 0


def test_a_delisted_holding_is_settled_at_its_last_price(demo_db):
    store = Store(f"sqlite:///{demo_db}")
    gone = [s for s in store.market.securities() if s.universe_to is not None]
    assert gone, "the demo universe has a delisting"
    cfg = _cfg(end=date(2017, 12, 29), strategy={"name": "top_n", "params": {"n": 8}},
               ml={"enabled": False})  # fmt: skip
    result = run_backtest(cfg, store=store, save=False)
    sym, last = gone[0].symbol, gone[0].universe_to
    settled = result.trades[result.trades["order_id"].str.endswith(":delisted")]
    assert list(settled["symbol"]) == [sym]
    assert settled["date"].iloc[0].date() > last
    last_close = store.market.get_prices(sym, days=1, end_date=last)["close"].iloc[-1]
    assert settled["price"].iloc[0] == pytest.approx(last_close)
    assert sym not in result.weights.iloc[-1][result.weights.iloc[-1] > 0].index
    assert (result.equity["cash"] >= -1e-6).all()


# -- outputs are all or nothing ------------------------------------------------------------------
#: ``sentinel backtest`` with a slow step injected here (not in the engine): ``trades`` writes
#: trades.csv in 4096-byte pieces 0.3 s apart; ``row`` holds the database row for a minute. Each
#: touches WRITE_MARK when it starts, so the test knows when to kill.
SLOW = """
import os, sys, time
import pandas as pd
from sentinel.db.records import RecordRepository

def mark():
    open(os.environ["WRITE_MARK"], "a").close()

if os.environ["SLOW"] == "trades":
    to_csv = pd.DataFrame.to_csv

    def slow_csv(self, path_or_buf=None, *args, **kw):
        if path_or_buf is None or not str(path_or_buf).endswith("trades.csv"):
            return to_csv(self, path_or_buf, *args, **kw)
        text = to_csv(self, None, *args, **kw)
        with open(path_or_buf, "w") as fh:
            for i in range(0, len(text), 4096):
                fh.write(text[i : i + 4096])
                fh.flush()
                mark()
                time.sleep(0.3)

    pd.DataFrame.to_csv = slow_csv
else:
    save = RecordRepository.save_backtest_run

    def slow_row(self, run):
        mark()
        time.sleep(60)
        return save(self, run)

    RecordRepository.save_backtest_run = slow_row
from cli.main import main
sys.argv = ["sentinel", *sys.argv[1:]]
main()
"""

OUTPUTS = {
    "metrics.json",
    "trades.csv",
    "equity.csv",
    "report.html",
    "predictions.csv",
    "round_trips.csv",
}


def _folder(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())} if path.exists() else {}


def _kill_while(slow: str, db: Path, cfg: Path, out: Path, tmp_path: Path) -> None:
    mark = tmp_path / f"mark-{slow}"
    env = {**os.environ, "SLOW": slow, "WRITE_MARK": str(mark)}
    cmd = [sys.executable, "-c", SLOW, "--db", f"sqlite:///{db}", "backtest", str(cfg),
           "--output", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while not mark.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert mark.exists(), proc.stderr.read().decode()[-2000:]


def test_a_kill_while_writing_leaves_the_old_or_the_new_complete_folder(demo_db, tmp_path, run_cli):
    db = tmp_path / "kill.db"
    shutil.copy(demo_db, db)
    store = Store(f"sqlite:///{db}")
    old_cfg = _cfg(ml={"enabled": False}, strategy={"name": "top_n", "params": {"n": 3}})
    new_cfg = _cfg(ml={"enabled": False}, strategy={"name": "top_n", "params": {"n": 5}})
    out, ref = tmp_path / "runs" / "t", tmp_path / "ref" / "t"
    run_backtest(old_cfg, store=store, output=out)
    run_backtest(new_cfg, store=store, output=ref, save=False)
    old, new = _folder(out), _folder(ref)
    assert set(old) == set(new) == OUTPUTS and old != new
    assert len(new["trades.csv"]) > 3 * 4096  # so a write can be caught halfway
    rows = store.db.count("backtest_runs")
    cfg = tmp_path / "new.yaml"
    cfg.write_text(yaml.safe_dump(new_cfg.model_dump(mode="json")))

    _kill_while("trades", db, cfg, out, tmp_path)  # trades.csv half written
    assert _folder(out) == old  # the previous run, whole
    assert store.db.count("backtest_runs") == rows
    assert any(p.name.startswith(".t.") for p in out.parent.iterdir())  # the abandoned attempt

    _kill_while("row", db, cfg, out, tmp_path)  # files in place, database row not yet written
    assert _folder(out) == new
    assert store.db.count("backtest_runs") == rows  # the row comes after the files

    args = ["--db", f"sqlite:///{db}", "backtest", str(cfg), "--output", str(out)]
    done = run_cli(*args, env={}, cwd=tmp_path)  # the kills need a process; this run does not
    assert done.returncode == 0, done.stderr[-2000:]
    assert _folder(out) == new
    assert store.db.count("backtest_runs") == rows + 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["t"]  # leftovers cleared


def test_an_output_folder_holding_other_files_is_refused_before_the_run(demo_db, tmp_path):
    store = Store(f"sqlite:///{demo_db}")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    rows = store.db.count("backtest_runs")
    with pytest.raises(ConfigError, match=r"notes\.txt") as err:
        run_backtest(_cfg(ml={"enabled": False}), store=store, output=folder)
    assert str(folder) in str(err.value)
    assert _folder(folder) == {"notes.txt": b"keep me"}
    assert store.db.count("backtest_runs") == rows


def test_models_that_fail_to_load_are_counted_and_named(demo_db, tmp_path, monkeypatch):
    """Not only the fallback column: metrics.json, the warnings, the report and the summary."""
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "data"))
    from sentinel.settings import get_settings

    get_settings.cache_clear()
    broken = tmp_path / "data" / "ml_models" / "DAA"
    broken.mkdir(parents=True)
    (broken / "nn_model.keras").write_bytes(b"not a model")
    out = tmp_path / "out"
    cfg = _cfg(end=date(2016, 9, 30), ml={"mode": "current"})
    result = run_backtest(cfg, store=Store(f"sqlite:///{demo_db}"), output=out, save=False)
    get_settings.cache_clear()
    assert (result.predictions.query("symbol == 'DAA'")["fallback"].str.startswith(
        "model load error")).all()  # fmt: skip
    assert result.metrics["n_model_load_errors"] == 1
    assert list(result.metrics["model_load_errors"]) == ["DAA"]
    assert "missing file(s)" in result.metrics["model_load_errors"]["DAA"]
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["n_model_load_errors"] == 1
    assert stored["model_load_errors"] == result.metrics["model_load_errors"]
    warning = next(w for w in result.warnings if "failed to load" in w)
    assert "DAA" in warning and "missing file(s)" in warning
    html = (out / "report.html").read_text()
    banner = html[html.index('class="warnings"') : html.index("<h2>Metrics</h2>")]
    assert "failed to load" in banner and "DAA" in banner
    assert ("model load errors", "1") in summary_lines(result)
