"""One name per idea across commands, --version, tables or --json, progress in a log, and a config
error before the heavy imports."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import cli.ml as ml_cli
from cli._common import CountingProgress
from cli.main import app
from sentinel.errors import ConfigError

runner = CliRunner()


def _commands(group, path: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield (*path, name), cmd
        if hasattr(cmd, "commands"):  # a group (Typer's own click)
            yield from _commands(cmd, (*path, name))


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"sentinel {version('sentinel')}"


def test_help_has_no_type_labels_on_flags_nor_raw_markup():
    root = typer.main.get_command(app)
    paths = [(), *(p for p, _ in _commands(root))]
    assert ("ml", "drift") in paths and ("backtest",) in paths
    for path in paths:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert r.exit_code == 0, (path, r.output)
        assert "<bool>" not in r.output and "``" not in r.output, (path, r.output)


def test_one_spelling_per_idea_in_help_and_old_spellings_hidden():
    def help_of(*path: str) -> str:
        return runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"}).output

    for path in (("ml", "train"), ("ml", "samples"), ("ml", "backfill"), ("regime", "backfill")):
        assert "--symbols" in help_of(*path), path
    assert not re.search(r"--symbol\b(?!s)", help_of("ml", "train"))  # the alias is hidden
    assert "--mode" in help_of("ml", "backfill") and "--model" not in help_of("ml", "backfill")
    assert "--mode" in help_of("ml", "drift")
    for path in (("ml", "status"), ("ml", "drift"), ("ml", "backfill")):
        assert "--json" in help_of(*path), path


def test_train_takes_a_comma_list_and_the_old_repeatable_flag(monkeypatch):
    seen = []
    monkeypatch.setattr(ml_cli, "open_cli_store", lambda: None)
    monkeypatch.setattr(ml_cli, "run_training", lambda store, **kw: seen.append(kw["symbols"]))
    assert runner.invoke(app, ["ml", "train", "--symbols", "AAA, BBB"]).exit_code == 0
    assert runner.invoke(app, ["ml", "train", "--symbol", "AAA", "--symbol", "CCC"]).exit_code == 0
    assert runner.invoke(app, ["ml", "train"]).exit_code == 0
    assert seen == [["AAA", "BBB"], ["AAA", "CCC"], None]


@pytest.mark.parametrize("flag", ["--mode", "--model"])
def test_backfill_mode_is_checked_and_lists_the_choices(flag):
    r = runner.invoke(app, ["ml", "backfill", flag, "walk-forward"])
    assert isinstance(r.exception, ConfigError)
    assert "walk_forward or current" in str(r.exception) and "--mode" in str(r.exception)


def _store_with_models(tmp_path: Path) -> str:
    from sentinel.db import Store

    url = f"sqlite:///{tmp_path / 's.db'}"
    Store(url)  # creates the tables
    return url


def test_status_is_a_table_by_default_and_json_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "data"))
    url = _store_with_models(tmp_path)
    table = runner.invoke(app, ["--db", url, "ml", "status"], env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.output
    assert "symbols_with_models" in table.output and "{" not in table.output
    raw = runner.invoke(app, ["--db", url, "ml", "status", "--json"])
    data = json.loads(raw.stdout)
    assert data["symbols_with_models"] == 0 and data["broken_models"] == {}
    drift = runner.invoke(app, ["--db", url, "ml", "drift", "--no-update"])
    assert drift.exit_code == 0 and "matured predictions" in drift.output
    data = json.loads(runner.invoke(app, ["--db", url, "ml", "drift", "--no-update",
                                          "--json"]).stdout)  # fmt: skip
    assert data["live"]["n_predictions"] == 0


def test_progress_in_a_log_prints_counts_every_few_percent():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with CountingProgress(console=console) as progress:
        prep = progress.add_task("preparing", total=None)
        progress.update(prep, description="computing features")
        task = progress.add_task("simulating days", total=1000)
        for i in range(1, 1001):
            progress.update(task, completed=i)
    lines = out.getvalue().splitlines()
    assert lines[0] == "computing features"
    counts = [
        int(m.group(1).replace(",", ""))
        for ln in lines
        if (m := re.match(r"simulating days: ([\d,]+)/", ln))
    ]
    assert counts[-1] == 1000 and len(counts) == 20  # one line per 5%, no more
    assert all(b - a == 50 for a, b in zip(counts, counts[1:], strict=False))


BAD = {
    "backtest": ("start: 2019-01-01\nend: 2020-01-01\nml: {mode: offf}\n",
                 ["ml.mode (line 3)", "'walk_forward', 'current' or 'off'"]),
    "sweep": ("base: {start: 2019-01-01, end: 2020-01-01}\ngrid: {ml.blend_ratio: [0.5, 1.5]}\n",
              ["grid.ml.blend_ratio[1] (line 2)", "less than or equal to 1"]),
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(BAD))
def test_a_config_error_comes_before_the_heavy_imports(tmp_path, command):
    text, expected = BAD[command]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code = (
        "import sys\nfrom cli.main import main\n"
        f"sys.argv = ['sentinel', {command!r}, {str(bad)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = ('tensorflow', 'vectorbt', 'plotly', 'xgboost', 'engine.backtest',"
        " 'engine.session', 'sentinel.db')\n"
        "print(code, [m for m in heavy if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parents[2])  # fmt: skip
    assert r.stdout.strip() == "1 []", (r.stdout, r.stderr)
    assert all(e in r.stderr for e in expected), r.stderr
