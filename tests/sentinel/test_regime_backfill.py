"""Regime backfill: killed and resumed gives the clean table; reruns write nothing; as-of equal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from sentinel.data.demo import generate_demo_universe, install_demo
from sentinel.db import Store
from sentinel.regime import RegimeDetector
from sentinel.regime_backfill import BackfillReport, backfill_regime_states

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "backfill_regime_states.py"
# Smallest history first: the first commit comes early and most of the work is still ahead.
ORDER = "DAD,DAC,DAB,DAA"

Table = dict[tuple[str, str], tuple[int, str, float]]


@pytest.fixture(scope="module")
def universe():
    """4 symbols x 4 years (three list late, so histories of 887, 731, 574 and 418 bars)."""
    return generate_demo_universe(
        seed=5, n_symbols=4, start=date(2014, 1, 1), end=date(2017, 12, 31)
    )


def _demo_store(path: Path, universe) -> Store:
    store = Store(f"sqlite:///{path}")
    install_demo(store, universe)
    return store


def _table(store: Store) -> Table:
    rows = store.db.rows("SELECT symbol, date, regime, regime_name, confidence FROM regime_states")
    table = {(s, str(d)[:10]): (int(r), n, float(c)) for s, d, r, n, c in rows}
    assert len(table) == len(rows)  # each (symbol, date) at most once
    return table


def _assert_same(got: Table, want: Table) -> None:
    assert got.keys() == want.keys()
    for key, (regime, name, conf) in want.items():
        assert got[key][:2] == (regime, name), key
        assert got[key][2] == pytest.approx(conf, abs=1e-9), key


@pytest.fixture(scope="module")
def clean(tmp_path_factory, universe) -> tuple[Store, Table, BackfillReport]:
    """One uninterrupted in-process run: the reference table."""
    store = _demo_store(tmp_path_factory.mktemp("clean") / "clean.db", universe)
    report = backfill_regime_states(store, commit_every=100, workers=1)
    yield store, _table(store), report
    store.engine.dispose()


def _script(db: Path, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--db", f"sqlite:///{db}", *args]


def test_clean_run_covers_every_date_with_enough_history(clean, universe) -> None:
    store, table, report = clean
    assert report.failures == {} and report.rows_written == len(table) == store.db.count(
        "regime_states"
    )
    assert report.batches == -(-len(table) // 100)
    per_symbol = pd.Series([k[0] for k in table]).value_counts().to_dict()
    assert per_symbol.get("DAD", 0) == 0  # 418 bars < 504: never enough history
    assert per_symbol["DAA"] > per_symbol["DAB"] > per_symbol["DAC"] > 0
    bars = universe.prices.groupby("symbol")["date"]
    detector = RegimeDetector(store.market)
    for symbol in ("DAA", "DAB", "DAC"):
        dates = sorted(d for s, d in table if s == symbol)
        all_bars = [str(d.date()) for d in bars.get_group(symbol)]
        first = all_bars.index(dates[0])
        assert dates == all_bars[first:]  # every bar from the first eligible one on
        assert detector.detect_regime_as_of(symbol, all_bars[first - 1]) is None


def test_rows_equal_detect_regime_as_of_on_sampled_dates(clean) -> None:
    """The batched history equals the one-date API read through a view bounded at each date."""
    store, table, _ = clean
    keys = sorted(table)
    for symbol, day in keys[:: max(1, len(keys) // 8)] + [keys[-1]]:
        with threadpool_limits(limits=1):  # KMeans' OpenMP threads: ~10x slower on 2 cores
            one = RegimeDetector(store.view(date.fromisoformat(day)).market).detect_regime_as_of(
                symbol, day
            )
        regime, name, conf = table[(symbol, day)]
        assert (one["regime"], one["regime_name"]) == (regime, name), (symbol, day)
        assert one["confidence"] == pytest.approx(conf, abs=1e-9)


def test_kill_and_resume_gives_the_clean_table(tmp_path, universe, clean, capsys) -> None:
    db = tmp_path / "killed.db"
    store = _demo_store(db, universe)
    want = clean[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = _script(db, "--commit-every", "20", "--workers", "1", "--symbols", ORDER)
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while store.db.count("regime_states") == 0:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no commit within 120 s"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # the session holds only this run's processes
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    partial = _table(store)
    assert 0 < len(partial) < len(want), "killed after completion: the test proves nothing"
    assert len(partial) % 20 == 0  # only whole batches are ever committed
    _assert_same(partial, {k: want[k] for k in partial})

    from cli.regime import script_main  # the rerun: same entry point, in-process

    capsys.readouterr()
    assert script_main(cmd[2:]) == 0
    _assert_same(_table(store), want)
    assert f"{len(partial):,} already present" in capsys.readouterr().out.replace("\n", " ")
    store.engine.dispose()


def test_rerun_of_finished_backfill_writes_nothing(clean) -> None:
    store, table, _ = clean
    seen: list[BackfillReport] = []
    report = backfill_regime_states(store, workers=2, on_progress=seen.append)
    assert report.rows_written == 0 and report.batches == 0 and report.failures == {}
    assert report.rows_existing == len(table) and report.symbols_done == report.symbols == 4
    assert _table(store) == table
    assert seen and seen[-1].symbols_done == 4


def test_crash_mid_batch_then_resume(tmp_path, universe, clean, monkeypatch) -> None:
    """A write failing after two batches aborts the run; the rerun fills exactly the rest."""
    store = _demo_store(tmp_path / "crash.db", universe)
    real = store.signals.upsert_regime_states
    calls = {"n": 0}

    def flaky(rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(rows)

    monkeypatch.setattr(store.signals, "upsert_regime_states", flaky)
    with pytest.raises(OSError, match="disk full"):
        backfill_regime_states(store, commit_every=70, workers=1)
    assert store.db.count("regime_states") == 140
    monkeypatch.setattr(store.signals, "upsert_regime_states", real)
    report = backfill_regime_states(store, commit_every=70, workers=1)
    assert report.rows_existing == 140 and report.rows_written == len(clean[1]) - 140
    _assert_same(_table(store), clean[1])


def test_process_pool_equals_in_process(tmp_path, universe, clean) -> None:
    store = _demo_store(tmp_path / "pool.db", universe)
    report = backfill_regime_states(store, ["DAC", "DAB"], commit_every=50, workers=2)
    assert report.failures == {} and report.symbols_done == 2
    _assert_same(_table(store), {k: v for k, v in clean[1].items() if k[0] in ("DAB", "DAC")})


def test_one_failing_symbol_does_not_stop_the_others(tmp_path, universe, clean, monkeypatch):
    from sentinel import regime_backfill

    store = _demo_store(tmp_path / "fail.db", universe)
    real = regime_backfill.symbol_regime_rows
    dab_listed = universe.prices.loc[universe.prices["symbol"] == "DAB", "date"].min()

    def broken(closes, dates, params=None):
        if closes.index[0] == dab_listed:  # the workers see bars, not names
            raise ValueError("bad bars")
        return real(closes, dates, params)

    monkeypatch.setattr(regime_backfill, "symbol_regime_rows", broken)
    report = backfill_regime_states(store, workers=1)
    assert list(report.failures) == ["DAB"] and "bad bars" in report.failures["DAB"]
    assert report.symbols_done == 4
    want = clean[1]
    _assert_same(_table(store), {k: v for k, v in want.items() if k[0] != "DAB"})
    monkeypatch.setattr(regime_backfill, "symbol_regime_rows", real)
    report = backfill_regime_states(store, workers=1)
    assert report.rows_written == sum(k[0] == "DAB" for k in want)
    _assert_same(_table(store), want)


def test_start_end_window_and_verify(tmp_path, universe, clean) -> None:
    """A window fills only its dates, with the values of the full run (history before start)."""
    store = _demo_store(tmp_path / "window.db", universe)
    report = backfill_regime_states(
        store, ["DAA", "DAB"], "2017-03-01", "2017-06-30", workers=1, verify=3
    )
    assert report.failures == {}
    got = _table(store)
    want = {
        k: v
        for k, v in clean[1].items()
        if k[0] in ("DAA", "DAB") and "2017-03-01" <= k[1] <= "2017-06-30"
    }
    assert len(want) > 100
    _assert_same(got, want)


def test_verify_catches_a_wrong_row(tmp_path, universe, monkeypatch) -> None:
    from sentinel import regime_backfill

    store = _demo_store(tmp_path / "verify.db", universe)
    real = regime_backfill.symbol_regime_rows

    def wrong(closes, dates, params=None):
        return [(d, 2 - r, {0: "bull", 1: "sideways", 2: "bear"}[r], c) for d, r, _, c in
                real(closes, dates, params)]  # fmt: skip

    monkeypatch.setattr(regime_backfill, "symbol_regime_rows", wrong)
    report = backfill_regime_states(store, ["DAC"], workers=1, verify=40)
    assert "BackfillMismatchError" in report.failures["DAC"]
    assert store.db.count("regime_states") == 0


def test_store_regime_state_for_date_is_idempotent(store) -> None:
    detector = RegimeDetector(store.market, store.signals)
    detector.store_regime_state_for_date("AAA", "2016-03-04", 2, "bull", 0.9)
    detector.store_regime_state_for_date("AAA", "2016-03-04", 2, "bull", 0.9)
    assert store.db.count("regime_states") == 1
    row = store.signals.get_regime_state("AAA", date(2016, 3, 4))
    assert (row.regime, row.regime_name, row.confidence) == (2, "bull", 0.9)
    detector.store_regime_state_for_date("AAA", "2016-03-04", 0, "bear", 0.6)
    assert store.db.count("regime_states") == 1
    row = store.signals.get_regime_state("AAA", date(2016, 3, 4))
    assert (row.regime, row.regime_name, row.confidence) == (0, "bear", 0.6)


def test_script_rejects_bad_options(tmp_path) -> None:
    from cli.regime import script_main

    assert script_main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "--commit-every", "0"]) == 1
