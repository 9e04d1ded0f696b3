"""Timing helpers and the workload registry."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data"
RESULTS = ROOT / "results"
WORKLOADS: dict[str, Callable[[], list[Result]]] = {}


@dataclass
class Result:
    workload: str
    metric: str
    value: float
    unit: str
    target: float | None = None
    reference: float | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return None if not self.reference else self.value / self.reference

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "ok" if self.value <= self.target else "MISSED"


class Skip(Exception):
    """A workload that cannot run here (e.g. ../shared/data absent)."""


def workload(name: str):
    def deco(fn):
        WORKLOADS[name] = fn
        return fn

    return deco


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        raise Skip(f"{path} not present")
    return path


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn) for _ in range(repeat))


def save(name: str, results: list[Result]) -> None:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "workload": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
        "results": [asdict(r) | {"ratio": r.ratio, "verdict": r.verdict} for r in results],
    }  # fmt: skip
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))
