"""The CLI: commands work end to end; errors are one line and a non-zero exit, no traceback.

Most cases run ``sentinel`` in this process (the ``run_cli`` fixture: same exit code, stdout and
stderr as a fresh process); a bad import file and a bad backtest config also run as real
processes, so output printed while the whole program imports is covered too."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _env(tmp_path) -> dict[str, str]:
    return {"SENTINEL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}


def _process(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
    )  # fmt: skip


@pytest.fixture
def _run(run_cli):
    """``_run(tmp_path, *args)``: ``sentinel ARGS`` in this process with the test's store."""
    return lambda tmp_path, *args: run_cli(*args, env=_env(tmp_path), cwd=tmp_path)


def test_demo_then_info(tmp_path, _run):
    r = _run(tmp_path, "data", "demo", "--symbols", "6", "--start", "2020-01-01",
             "--end", "2020-06-30")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "6 symbols" in r.stdout and "synthetic" in r.stdout
    r = _run(tmp_path, "data", "info")
    assert r.returncode == 0 and "MARKET" in r.stdout


@pytest.mark.parametrize("where", ["process", "in-process"])
def test_bad_file_is_one_line_error(tmp_path, _run, where):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,symbol,open,high,low,close,volume\n2020-01-02,AAA,10,9,11,10,5\n")
    run = _process if where == "process" else _run
    r = run(tmp_path, "data", "import", str(bad))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "line 2: high < low" in lines[0] and str(bad) in lines[0]


def test_debug_shows_traceback(tmp_path, _run):
    r = _run(tmp_path, "--debug", "data", "import", str(tmp_path / "missing.csv"))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_unknown_option_is_usage_error(tmp_path, _run):
    r = _run(tmp_path, "data", "import", "--nope")
    assert r.returncode == 2 and "Traceback" not in r.stderr


BAD_CONFIGS = {
    "strategy: {name: nope}\n": "unknown strategy 'nope'",
    "ml: {blend_ratio: 1.5}\n": "ml.blend_ratio (line 3)",
    "universe: {kind: sector, sectors: [Nowhere]}\n": "unknown sector(s) 'Nowhere'; the store's "
    "sectors: Consumer",
    "benchmark: SPX\n": "benchmark: unknown benchmark 'SPX'; the store's benchmarks: MARKET",
    "ml: {mode: offf}\n": "ml.mode (line 3): Input should be 'walk_forward', 'current' or 'off'",
}


def test_bad_backtest_configs_are_one_line_and_write_nothing(tmp_path, _run):
    assert _run(tmp_path, "data", "demo", "--symbols", "4", "--start", "2020-01-01",
                "--end", "2020-06-30").returncode == 0  # fmt: skip
    cases = dict(BAD_CONFIGS)
    cases["end: 2019-06-01\n"] = "must be after start"
    for i, (extra, expected) in enumerate(cases.items()):
        start_end = "start: 2020-02-03\n" + ("" if extra.startswith("end") else "end: 2020-06-30\n")
        cfg = tmp_path / f"bad{i}.yaml"
        cfg.write_text(start_end + extra + f"output: {tmp_path / f'out{i}'}\n")
        r = (_process if i == 0 else _run)(tmp_path, "backtest", str(cfg))  # one real process
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 1, (extra, r.stderr)
        assert len(lines) == 1 and expected in lines[0], (extra, lines)
        assert not (tmp_path / f"out{i}").exists()
    nodata = tmp_path / "nodata.yaml"
    nodata.write_text("start: 2030-01-01\nend: 2030-06-30\n")
    r = _run(tmp_path, "backtest", str(nodata))
    assert r.returncode == 1 and "no trading days between 2030-01-01" in r.stderr
    from sentinel.db import Store

    assert Store(f"sqlite:///{tmp_path / 'cli.db'}").db.count("backtest_runs") == 0


def test_ml_train_without_samples_is_one_line_error_naming_the_fix(tmp_path, _run):
    assert _run(tmp_path, "data", "demo", "--symbols", "4", "--start", "2020-01-01",
                "--end", "2020-06-30").returncode == 0  # fmt: skip
    r = _run(tmp_path, "ml", "train")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert len(lines) == 1 and "no training samples" in lines[0], lines
    assert "sentinel ml samples" in lines[0]
    assert "0 trained" not in r.stdout
