"""Run benchmark workloads and print a table: ``python -m bench [NAME ...] [--list]``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench import api, engine, ml, ml_eval_table, scale, signals, sweep, workloads  # noqa: E402,F401
from bench._harness import WORKLOADS, Skip, save  # noqa: E402


def main(argv: list[str]) -> int:
    console = Console(width=max(Console().width, 150))
    if "-h" in argv or "--help" in argv:
        console.print(
            __doc__.strip() + "\nNo name runs every workload (tens of minutes); --list names them."
        )
        return 0
    if "--list" in argv:
        for name, fn in WORKLOADS.items():
            console.print(f"{name}: {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    names = [a for a in argv if not a.startswith("-")] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        console.print(f"unknown workload(s): {', '.join(unknown)}; see --list")
        return 2
    table = Table(title=f"sentinel benchmarks (load avg {os.getloadavg()[0]:.2f})")
    for col in ("workload", "metric", "value", "target", "reference", "ratio", "verdict"):
        table.add_column(col)
    missed = 0
    for name in names:
        with console.status(f"running {name}"):
            try:
                results = WORKLOADS[name]()
            except Skip as exc:
                table.add_row(name, "skipped", str(exc), "", "", "", "-")
                continue
        save(name, results)
        for r in results:
            missed += r.verdict == "MISSED"
            table.add_row(
                r.workload, r.metric, f"{r.value:.4g} {r.unit}",
                "" if r.target is None else f"{r.target:.4g}",
                "" if r.reference is None else f"{r.reference:.4g}",
                "" if r.ratio is None else f"{r.ratio:.2f}x", r.verdict,
            )  # fmt: skip
    console.print(table)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
