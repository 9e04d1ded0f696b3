"""Every model kind x target on real data: ``python -m bench.ml_eval_table [--only KIND:TARGET]``.

Runs ``sentinel ml evaluate configs/ml_eval_sp500.yaml --set ml.model=K --set ml.target=T`` for
each variant as a user would (a subprocess, so each time includes start-up), each on its own copy
of one imported store (the evaluation writes training samples; parallel runs must not share a
file), and collects mean rank IC, Newey-West t and the quintile spread of every score, the
baselines included, into ``bench/results/ml_eval/`` and one Markdown table. Resumable: a variant
whose ``ml_eval.json`` exists is read, not rerun (``--force`` reruns). Needs ../shared/data.

The workload ``ml_evaluate_sp500`` (``python -m bench ml_evaluate_sp500``) times the default
variant (per_symbol, return) against the issue's 10-minute target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Result, shared, workload
from sentinel.ml.baselines import BASELINES

CONFIG = ROOT.parent / "configs" / "ml_eval_sp500.yaml"
OUT = ROOT / "results" / "ml_eval"
KINDS = ("per_symbol", "pooled", "hierarchical")
TARGETS = ("return", "excess", "rank")
#: Scores shown per variant: the run's own, then the shared baselines.
RUN_ROWS = ("predicted_return", "ml_score", "wavelet_score", "blended_score")
BASE_ROWS = BASELINES  # zero, reversal_20, momentum_60, ridge (sentinel/ml/baselines.py)


def _store() -> Path:
    """One store with the S&P files imported (the config's ``data.imports``), checkpointed so
    that a plain file copy is the whole database."""
    import sqlite3

    shared("sp500_5y_prices.csv.gz")
    base = OUT / "store" / "sp500_5y.db"
    if not base.exists():
        from engine.config import load_config
        from engine.session import open_run_store

        base.parent.mkdir(parents=True, exist_ok=True)
        open_run_store(load_config(CONFIG), f"sqlite:///{base}")
    with sqlite3.connect(base) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return base


def run_variant(kind: str, target: str, *, force: bool = False) -> dict[str, Any]:
    """Evaluate one variant (or read its saved result); adds ``seconds`` and ``load``."""
    folder = OUT / f"{kind}_{target}"
    done = folder / "ml_eval.json"
    if done.exists() and not force:
        return json.loads(done.read_text())
    base = _store()
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "store.db"
    shutil.copyfile(base, db)
    load = os.getloadavg()[0]
    cmd = [
        sys.executable, "-m", "cli", f"--db=sqlite:///{db}", "ml", "evaluate", str(CONFIG),
        "--set", f"ml.model={kind}", "--set", f"ml.target={target}", "--output", str(folder),
        "--json",
    ]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT.parent)
    seconds = time.perf_counter() - t
    db.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{kind}/{target} failed (exit {proc.returncode}): {' | '.join(tail)}")
    if not done.exists():  # a command that exits 0 without writing its result is a failure
        raise RuntimeError(f"{kind}/{target}: exit 0 but no {done} ({' '.join(cmd[1:4])} ...)")
    out = json.loads(done.read_text())
    out["bench"] = {"seconds": round(seconds, 1), "load_at_start": load,
                    "load_at_end": os.getloadavg()[0]}  # fmt: skip
    done.write_text(json.dumps(out, indent=2) + "\n")
    return out


def _cell(s: dict[str, Any] | None) -> str:
    if not s or s.get("mean_ic") is None:
        return "n/a"
    return f"{s['mean_ic']:+.4f} (t {s['t_nw']:+.2f}) q5-q1 {s['spread_mean']:+.4f}"


def table(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Markdown: one row per variant and score, then the baselines of the first variant."""
    head = "| model kind | target | score | mean rank IC (Newey-West t), mean q5-q1 return |"
    lines = [head, "|---|---|---|---|"]
    for (kind, target), r in results.items():
        summary = r.get("scores", {})
        for score in RUN_ROWS:
            lines.append(f"| {kind} | {target} | {score} | {_cell(summary.get(score))} |")
    for (kind, target), r in results.items():
        summary = r.get("scores", {})
        for score in BASE_ROWS:
            lines.append(f"| baseline ({kind}, {target} run) | | {score} | "
                         f"{_cell(summary.get(score))} |")  # fmt: skip
    return "\n".join(lines)


@workload("ml_evaluate_sp500")
def ml_evaluate_sp500() -> list[Result]:
    """``sentinel ml evaluate`` on the 366-symbol S&P config (monthly retrains): < 10 min."""
    r = run_variant("per_symbol", "return", force=True)
    b = r["bench"]
    s = r.get("scores", {}).get("predicted_return", {})
    return [
        Result("ml_evaluate_sp500", "ml evaluate, 366 symbols, 2014-2017, monthly retrains",
               b["seconds"], "s", 600.0, None,
               f"per_symbol/return; IC {s.get('mean_ic')}; load avg {b['load_at_start']:.2f} -> "
               f"{b['load_at_end']:.2f}"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="KIND:TARGET (repeatable)")
    ap.add_argument("--force", action="store_true", help="rerun variants already saved")
    args = ap.parse_args(argv)
    wanted = [tuple(o.split(":", 1)) for o in args.only] or [(k, t) for k in KINDS for t in TARGETS]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, target in wanted:
        print(f"{kind}/{target} ...", flush=True)
        try:
            results[(kind, target)] = r = run_variant(kind, target, force=args.force)
        except RuntimeError as exc:
            print(f"  {exc}", flush=True)
            continue
        b = r.get("bench", {})
        print(f"  {b.get('seconds')} s (load {b.get('load_at_start')})", flush=True)
    text = table(results)
    (OUT / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
