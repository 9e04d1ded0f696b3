"""Regenerate the validation table of ``docs/ml_validation.md`` from the real 5-year S&P data.

Why a script: the table is a claim about the models, so it must be reproducible. It imports
``../shared/data`` into a cached SQLite store (once), generates the weekly samples, trains every
symbol once with the purged validation and the shuffled-split diagnostic on (``train_as_of``,
nothing saved to the model folder) and prints the markdown table plus a JSON file of every
symbol's metrics.

Usage::

    .venv/bin/python scripts/ml_validation_report.py [--db .cache/ml_validation/sp500_5y.db]
        [--max-epochs 100] [--json .cache/ml_validation/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from sentinel.ml.baselines import BASELINES  # noqa: E402  (after the TF environment)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
METRICS = ("rmse", "mae", "r2", "ic", "hit_rate")


def build_store(db: Path) -> Any:
    """The 5-year S&P store with its training samples (imported and generated on first use)."""
    from sentinel.data.importer import import_files
    from sentinel.db import Store
    from sentinel.ml.dataset import generate_samples

    fresh = not db.exists()
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{db}")
    if fresh or store.db.count("prices") == 0:
        import_files(store, [SHARED / "sp500_5y_prices.csv.gz"], skip_bad=True)
        import_files(store, [SHARED / "benchmarks.csv.gz"], kind="benchmark", skip_bad=True)
        import_files(store, [SHARED / "sectors.csv"], kind="sectors", skip_bad=True)
    if store.db.count("training_samples") == 0:
        generate_samples(store, horizon_days=14)
    return store


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def summarise(per_symbol: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean of each metric over symbols (undefined figures left out), per model and split."""
    rows: dict[str, dict[str, float | None]] = {}
    for name in ("ensemble", "nn", "xgb"):
        rows[f"{name} (purged)"] = {
            k: _mean([m["models"][name][k] for m in per_symbol.values()]) for k in METRICS
        }
    for name in BASELINES:
        rows[f"baseline: {name} (purged)"] = {
            k: _mean([m["baselines"].get(name, {}).get(k) for m in per_symbol.values()])
            for k in METRICS
        }
    shuffled = [m["shuffled_split"] for m in per_symbol.values() if m.get("shuffled_split")]
    rows["ensemble (shuffled split, leaky)"] = {k: _mean([s[k] for s in shuffled]) for k in METRICS}
    return rows


def wins(per_symbol: dict[str, dict[str, Any]]) -> dict[str, int]:
    """On how many symbols the ensemble's RMSE is below each baseline's and its IC above each
    baseline's (a baseline with an undefined IC, like zero's, is not counted as beaten)."""
    out = {"symbols": len(per_symbol), "ic_positive": 0}
    for name in BASELINES:
        out[f"rmse_below_{name}"] = 0
        out[f"ic_above_{name}"] = 0
    for m in per_symbol.values():
        ens = m["models"]["ensemble"]
        out["ic_positive"] += (ens["ic"] or 0.0) > 0
        for name in BASELINES:
            base = m["baselines"].get(name) or {}
            if base.get("rmse") is not None:
                out[f"rmse_below_{name}"] += ens["rmse"] < base["rmse"]
            if base.get("ic") is not None and ens["ic"] is not None:
                out[f"ic_above_{name}"] += ens["ic"] > base["ic"]
    return out


def markdown(rows: dict[str, dict[str, float | None]]) -> str:
    def f(v: float | None, pct: bool = False) -> str:
        if v is None:
            return "n/a"
        return f"{100 * v:.1f} %" if pct else f"{v:.4f}"

    lines = [
        "| model / split | RMSE | MAE | R² | rank IC | hit rate |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {name} | {f(m['rmse'])} | {f(m['mae'])} | {f(m['r2'])} | {f(m['ic'])} "
            f"| {f(m['hit_rate'], True)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, default=ROOT / ".cache" / "ml_validation" / "sp500_5y.db")
    p.add_argument("--json", type=Path, default=ROOT / ".cache" / "ml_validation" / "metrics.json")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--min-samples", type=int, default=100)
    args = p.parse_args(argv)
    if not (SHARED / "sp500_5y_prices.csv.gz").exists():
        print(f"real data not found under {SHARED}", file=sys.stderr)
        return 1
    from sentinel.ml.training import train_as_of

    t0 = time.perf_counter()
    store = build_store(args.db)
    t1 = time.perf_counter()
    report = train_as_of(
        store, min_samples=args.min_samples, max_epochs=args.max_epochs, validate=True,
        progress=lambda msg: print(msg, file=sys.stderr),
    )  # fmt: skip
    t2 = time.perf_counter()
    per_symbol = report.metrics
    rows = summarise(per_symbol)
    payload = {
        "symbols_trained": len(report.models),
        "skipped": report.skipped,
        "failed": report.failed,
        "samples_total": int(sum(report.samples.values())),
        "prepare_seconds": t1 - t0,
        "train_seconds": t2 - t1,
        "max_epochs": args.max_epochs,
        "summary": rows,
        "wins": wins(per_symbol),
        "per_symbol": per_symbol,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(markdown(rows))
    print()
    print(json.dumps({k: v for k, v in payload.items() if k != "per_symbol"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
