"""``sentinel ml evaluate``: bad input is one line and exit code 1, and nothing is written.

``sentinel`` runs in this process (the ``run_cli`` fixture: a fresh process's exit code and
output, without its imports)."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIG = """name: ev
data: {{source: store, demo_symbols: 4}}
start: 2019-01-01
end: {end}
rebalance: {{every: weekly, weekday: friday}}
strategy: {{name: top_n, params: {{n: 2}}}}
ml: {ml}
"""


@pytest.mark.parametrize(
    ("end", "ml", "message"),
    [
        ("2019-12-31", "{enabled: false}", "needs a run that uses ML"),
        ("2019-01-10", "{enabled: true, horizon_days: 30}", "not shorter than the period"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, run_cli, end, ml, message):
    cfg = tmp_path / "ev.yaml"
    cfg.write_text(CONFIG.format(end=end, ml=ml))
    out = tmp_path / "eval"
    env = {"COLUMNS": "200", "SENTINEL_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    r = run_cli("ml", "evaluate", str(cfg), "--output", str(out), env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not out.exists()
