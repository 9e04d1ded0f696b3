"""Where the main job's wall time goes: ``python -m bench.profile_demo [CONFIG] [--interval MS]``.

A stack-sampling profiler (a thread reads every thread's stack each few milliseconds) runs the
command ``sentinel backtest CONFIG`` in this process, from the first import to the report, and
prints the share of wall time per phase. A sample is charged to the phase of the innermost
project frame on the main thread's stack (so NumPy called from the features counts as features),
or to ``imports`` when the stack is executing a module import anywhere. XGBoost fits that run in
worker threads beside the network's training are reported separately as busy time, because they
overlap the main thread rather than add to it. The networks train in a child process
(``sentinel.ml.nn_worker``), which this sampler does not see: the main thread's wait for it is
its own row.

Why sampling and not cProfile: cProfile slows Python-heavy code several-fold and so distorts the
very split it is meant to show; a 5 ms sampler costs about 1 %.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# (module prefix, function-name substring or "", phase); the first matching rule wins.
RULES: tuple[tuple[str, str, str], ...] = (
    # the networks train in a child process (sentinel.ml.nn_worker): the main thread waits
    ("sentinel.ml.nn_worker", "", "training: NN (waiting for the training process)"),
    ("sentinel.ml.batched", "xgb", "training: XGBoost"),
    ("sentinel.ml.batched", "", "training: NN"),
    ("sentinel.ml.nn", "", "training: NN"),
    ("sentinel.ml._keras", "", "training: NN"),
    ("sentinel.ml._weights", "", "training: NN"),
    ("sentinel.ml.validation", "", "training: validation metrics"),
    ("sentinel.ml.ensemble", "", "prediction"),
    ("sentinel.ml._trees", "", "prediction"),
    ("sentinel.ml.predictor", "", "prediction"),
    ("sentinel.ml.model_files", "", "model files (save/load)"),
    ("sentinel.ml.training", "save", "model files (save/load)"),
    ("sentinel.ml.dataset", "", "features & samples"),
    ("sentinel.ml_features", "", "features & samples"),
    ("sentinel.wavelet", "", "wavelet"),
    ("sentinel.regime", "", "regime"),
    ("sentinel.planner", "", "planner (scores, blend, targets)"),
    ("sentinel.data.demo", "", "demo data generation"),
    ("sentinel.data", "", "data load"),
    ("sentinel.db", "", "data load"),
    ("engine.metrics", "", "metrics"),
    ("engine.report", "", "report writing"),
    ("engine.runner", "", "day loop"),
    ("engine.broker", "", "day loop"),
    ("engine.portfolio", "", "day loop"),
    ("engine.clock", "", "day loop"),
    ("strategies", "", "day loop"),
    ("engine.session", "", "session set-up"),
    ("engine.config", "", "config"),
)
PROJECT = ("sentinel", "engine", "strategies", "cli")
#: Callers whose whole subtree is one phase, wherever its innermost project frame lies (the
#: report's network importance calls the network's predict, which is not training).
OUTER: tuple[tuple[str, str], ...] = (
    ("engine.ml_report", "report: ML sections (IC, importance, baselines)"),
)


def _module(frame: FrameType) -> str:
    return frame.f_globals.get("__name__", "") or ""


def classify(frame: FrameType | None) -> str:
    """The phase of one main-thread stack (innermost frame given)."""
    stack: list[FrameType] = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    if any(f.f_code.co_filename.startswith("<frozen importlib") for f in stack):
        return "imports"
    for prefix, phase in OUTER:
        if any(_module(f).startswith(prefix) for f in stack):
            return phase
    for f in stack:  # innermost first
        mod = _module(f)
        if not mod.startswith(PROJECT):
            continue
        for prefix, func, phase in RULES:
            if mod.startswith(prefix) and func in f.f_code.co_name:
                return phase
    return "other (orchestration, libraries)"


def _xgb_busy(frame: FrameType | None) -> bool:
    """True when a worker thread is inside an XGBoost fit (not waiting for work)."""
    in_fit = False
    while frame is not None:
        if _module(frame).startswith("xgboost"):
            in_fit = True
        frame = frame.f_back
    return in_fit


class Sampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.main_id = threading.main_thread().ident
        self.phases: Counter[str] = Counter()
        self.xgb_samples = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self._halt.wait(self.interval):
            frames = sys._current_frames()
            self.samples += 1
            self.phases[classify(frames.get(self.main_id))] += 1
            if any(_xgb_busy(f) for tid, f in frames.items() if tid not in (me, self.main_id)):
                self.xgb_samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="configs/demo.yaml")
    ap.add_argument("--interval", type=float, default=5.0, help="sampling interval in ms")
    ap.add_argument("--db", default=None, help="store URL (default: the config's / sentinel.db)")
    args = ap.parse_args(argv)

    load = os.getloadavg()[0]
    sampler = Sampler(args.interval / 1000)
    t0 = time.perf_counter()
    sampler.start()
    from cli.main import main as cli_main  # imported under the sampler: start-up is measured

    out = Path(tempfile.mkdtemp(prefix="profile_demo_")) / "run"
    # --create: a new SQLite file is the fresh-store case (the demo is generated into it)
    db = [f"--db={args.db}", "--create"] if args.db else []
    cmd = [*db, "backtest", args.config, "--output", str(out)]
    sys.argv = ["sentinel", *cmd]
    try:
        cli_main()
        code = 0
    except SystemExit as exc:  # Typer apps exit
        code = exc.code if isinstance(exc.code, int) else 0
    wall = time.perf_counter() - t0
    sampler.stop()

    n = max(sampler.samples, 1)
    print(f"\nmain job profile: {args.config}  wall {wall:.1f} s  exit {code}  "
          f"load avg at start {load:.2f}, now {os.getloadavg()[0]:.2f}  ({n} samples)")  # fmt: skip
    print(f"{'phase':<36}{'seconds':>9}{'share':>8}")
    for phase, k in sampler.phases.most_common():
        print(f"{phase:<36}{wall * k / n:>9.1f}{k / n:>8.1%}")
    print(f"{'(XGBoost busy in worker threads)':<36}{wall * sampler.xgb_samples / n:>9.1f}")
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
