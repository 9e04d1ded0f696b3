"""CLI traps: ``--db`` naming a missing file, and an import that would overwrite stored bars.

``sentinel`` runs in this process (the ``run_cli`` fixture: a fresh process's exit code and
output, without its second of imports per call)."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def _run(run_cli):
    """``_run(tmp_path, *args)``: ``sentinel ARGS`` with no SENTINEL_* variable, in tmp_path."""
    env = {"PATH": "/usr/bin:/bin"}
    return lambda tmp_path, *args: run_cli(*args, env={**env, "HOME": str(tmp_path)}, cwd=tmp_path)


def _error_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    return lines[0]


def test_db_naming_a_missing_file_is_refused_unless_create(tmp_path, _run):
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    line = _error_line(_run(tmp_path, "--db", url, "data", "info"))
    assert "no such database file" in line and "--create" in line
    assert not (tmp_path / "typo.db").exists()
    r = _run(tmp_path, "--db", url, "--create", "data", "info")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "typo.db").exists()
    assert _run(tmp_path, "--db", url, "data", "info").returncode == 0  # it exists now


def test_import_over_differently_adjusted_bars_needs_replace(tmp_path, _run):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    head = "date,symbol,open,high,low,close,volume\n"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(head + "2020-01-02,AAA,10,11,9,10,100\n")
    b.write_text(head + "2020-01-02,AAA,5,5.5,4.5,5,200\n")
    assert _run(tmp_path, "--db", url, "--create", "data", "import", str(a)).returncode == 0
    line = _error_line(_run(tmp_path, "--db", url, "data", "import", str(b)))
    assert f"{b}, line 2: overlaps stored bars with different values" in line
    assert "--replace" in line
    r = _run(tmp_path, "--db", url, "data", "import", str(b), "--replace")
    assert r.returncode == 0, r.stderr
