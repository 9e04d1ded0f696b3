"""The networks' training graph in its own process: TensorFlow off the run's GIL.

Why: a walk-forward backtest on the 2-core target is bound by its main process's GIL, not by
arithmetic. TensorFlow's import (~5-6 s of GIL-holding Python), the graph's one-time tracing
(~2 s) and the epoch loop's Python all competed with the run's own Python (features, scores,
report) and with the XGBoost threads' wrappers. In a child process they run on the other core and
hold nobody's GIL; the run sends each batched pass's padded arrays (a few MB) down a pipe and
gets the per-symbol weights back.

The child runs exactly :func:`sentinel.ml._graph._run_epochs` on the same arrays with the same
seeds and one intra-/inter-op thread, as the in-process path does, so the networks are the same
bits either way (the tests compare them). Only the padded stack crosses the pipe: the scalers,
the target scaling and the assembly of each :class:`~sentinel.ml.nn.NNRegressor` stay in the
caller.

Lifetime: one child per process, started on first use (:func:`start`) and reused by later runs
in the same process (the import and tracing are paid once). It exits when its parent closes the
pipe, including when the parent dies, so it can never outlive the run that started it. It
ignores SIGINT: Ctrl-C stops the parent, whose exit then ends the child.

Which code uses it is explicit: :func:`using` scopes it around a training call (the planner does
so for a run's retrains); everything else trains in process.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sentinel.ml.errors import MLError

_ACTIVE: contextvars.ContextVar[NNWorker | None] = contextvars.ContextVar(
    "sentinel_nn_worker", default=None
)
_WORKER: NNWorker | None = None
_START = threading.Lock()


class NNWorker:
    """A child Python process holding the batched training graphs; one request at a time."""

    def __init__(self, threads: int = 1) -> None:
        down_r, down_w = os.pipe()  # parent -> child
        up_r, up_w = os.pipe()  # child -> parent
        root = str(Path(__file__).resolve().parents[2])  # the checkout holding `sentinel`
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        # the child uses raw TensorFlow ops only: without this, `import tensorflow` eagerly
        # imports Keras 3 (and with it scikit-learn and matplotlib), 2-3 s of the child's ~6 s
        # import that the first retrain waited for. With it, TensorFlow looks for the legacy
        # tf_keras package instead and, if it is not installed (it is not a dependency), skips
        # Keras. The networks do not change: the graph holds the same TensorFlow ops.
        env["TF_USE_LEGACY_KERAS"] = "1"
        # one malloc arena: the child's work runs on one thread at a time, and glibc's extra
        # per-thread arenas kept freed fit buffers resident: the 500-symbol run's training
        # process peaked at 707 MB with one arena against 766 MB with glibc's default (one run
        # each, 2026-12-01); allocation only, so the networks cannot change
        env.setdefault("MALLOC_ARENA_MAX", "1")
        # and a fixed mmap threshold: glibc's moving one rises to the largest buffer freed, so
        # a 500-symbol stack's large buffers (its inputs alone ~10 MB) stayed resident.
        # At 4 MB that run's training process peaked at 663, 672 and 698 MB against 714-719 MB
        # with glibc's default, and the 100-symbol walk-forward took 34.7 and 34.4 s against
        # 33.7 and 35.6 s (interleaved). 1 MB saved ~10 MB more but cost that walk-forward
        # ~1.4 s (36.3 against 34.9 s, mean of five pairs): its stacks' MB-sized step buffers
        # were then mapped and unmapped at every step (2026-12-02). Allocation only: same bits.
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(4 << 20))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            out: Any = sys.stderr.fileno()  # a stray print must not go to the run's stdout
        except (AttributeError, OSError, ValueError):
            out = subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentinel.ml.nn_worker", str(down_r), str(up_w),
                 str(int(threads))],
                pass_fds=(down_r, up_w), stdin=subprocess.DEVNULL, stdout=out, env=env,
                close_fds=True,
            )  # fmt: skip
        finally:
            os.close(down_r)
            os.close(up_w)
        self._send = Connection(down_w, readable=False)
        self._recv = Connection(up_r, writable=False)
        self.lock = threading.Lock()
        self.owner = os.getpid()  # a forked copy of this object must not use the parent's pipes

    def warm(self, n_feat: int, params: Any) -> None:
        """Ask the child to build and trace this architecture's graph now (no reply awaited:
        a failure there is reported by the first real fit; a graph built before only runs one
        dummy step)."""
        with self.lock:
            self._call_nowait(("warm", int(n_feat), params))

    def run_epochs(
        self,
        n_feat: int,
        params: Any,
        arrays: tuple[Any, ...],
        goal: Any,
        fixed: bool,
        seed: int,
        patience: int,
        progress: Callable[[int, int], None] | None,
        start: Any = None,
    ) -> dict[int, Any]:
        """:func:`sentinel.ml._graph._run_epochs` on ``arrays`` (the stack's ``x_tr, y_tr,
        n_tr, x_va, y_va, m_va``) in the child; ``progress`` is called here, per epoch."""
        req = ("fit", int(n_feat), params, arrays, goal, bool(fixed), int(seed), int(patience),
               progress is not None, start)  # fmt: skip
        with self.lock:
            self._call_nowait(req)
            while True:
                msg = self._reply()
                if msg[0] == "progress":
                    if progress is not None:
                        progress(int(msg[1]), int(msg[2]))
                elif msg[0] == "done":
                    return msg[1]
                else:
                    raise MLError(f"network training failed in the training process:\n{msg[1]}")

    def peak_rss_mb(self) -> float:
        """The child's peak resident memory (VmHWM) in MB, for memory benchmarks."""
        with self.lock:
            self._call_nowait(("rss",))
            return float(self._reply()[1])

    def close(self) -> None:
        """End the child now. It holds nothing to save, and its own orderly exit (TensorFlow's
        teardown) held the run's exit for about a second; so it is killed, then reaped."""
        for conn in (self._send, self._recv):
            with contextlib.suppress(OSError):
                conn.close()
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()

    @property
    def owned_here(self) -> bool:
        """False in a process forked from the one that started the child."""
        return os.getpid() == self.owner

    @property
    def alive(self) -> bool:
        return self.owned_here and self.proc.poll() is None and not self._send.closed

    def _call_nowait(self, req: tuple[Any, ...]) -> None:
        try:
            self._send.send(req)
        except OSError as exc:
            raise self._died() from exc

    def _reply(self) -> tuple[Any, ...]:
        try:
            return self._recv.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc

    def _died(self) -> MLError:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return MLError(
            f"the network-training process (pid {self.proc.pid}) exited with code {code}; "
            "its error, if any, is on stderr above"
        )


def spawn(threads: int = 1) -> NNWorker:
    """This process's worker, started now if there is none (or it died): the child begins
    importing TensorFlow at once. Raises OSError if no child process can be started."""
    global _WORKER
    with _START:
        if _WORKER is None or not _WORKER.alive:
            _WORKER = NNWorker(threads)
            atexit.register(_WORKER.close)
        return _WORKER


def start(n_feat: int, params: Any, threads: int = 1) -> NNWorker:
    """:func:`spawn`, then have the child trace ``params``' graph as soon as it can."""
    worker = spawn(threads)
    worker.warm(n_feat, params)
    return worker


def peak_rss_mb() -> float:
    """The training process's peak resident memory in MB (0.0 if this process started none):
    a run's memory is its own peak plus this one."""
    with _START:
        worker = _WORKER
    return worker.peak_rss_mb() if worker is not None and worker.alive else 0.0


def active() -> NNWorker | None:
    """The worker the current training call should use (None: train in this process, also in
    a process forked from the one that started it)."""
    worker = _ACTIVE.get()
    return worker if worker is not None and worker.owned_here else None


@contextlib.contextmanager
def using(worker: NNWorker | None) -> Iterator[None]:
    """Route the batched network fits inside the block to ``worker`` (None: in process)."""
    token = _ACTIVE.set(worker)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


# --- the child ------------------------------------------------------------------------------


def _serve(recv: Connection, send: Connection, threads: int) -> None:
    """Answer requests until the parent closes the pipe."""
    import traceback

    import numpy as np

    from sentinel.ml._memory import peak_rss_mb, release_freed_memory
    from sentinel.ml._tf import configure_threads

    configure_threads(threads, threads)  # before TensorFlow's runtime starts, as in process
    from sentinel.ml._graph import _run_epochs, _Stack, _trainer  # NumPy + TensorFlow only

    while True:
        try:
            req = recv.recv()
        except (EOFError, OSError):
            return
        kind = req[0]
        try:
            if kind == "warm":
                tr = _trainer(req[1], req[2])
                with tr.lock:
                    tr.warm_up()
                continue
            if kind == "rss":
                send.send(("rss", peak_rss_mb()))
                continue
            _, n_feat, params, arrays, goal, fixed, seed, patience, report, start = req
            st = _Stack(*arrays)  # x_tr, y_tr, n_tr, x_va, y_va, m_va
            del req, arrays  # the stack holds the only reference: freed after the fit

            def progress(epoch: int, last: int) -> None:
                send.send(("progress", epoch, last))

            tr = _trainer(n_feat, params)
            with tr.lock:
                out = _run_epochs(tr, st, np.asarray(goal), fixed, seed, patience,
                                  params.batch_size, progress if report else None,
                                  start)  # fmt: skip
            send.send(("done", out))
            del out, st
            release_freed_memory()  # a retrain's tensors, before the next one stacks on them
        except (BrokenPipeError, EOFError):
            return
        except Exception:  # noqa: BLE001 - sent to the parent, which raises it with context
            if kind == "warm":
                continue  # the first real fit reports it
            try:
                send.send(("error", traceback.format_exc()))
            except OSError:
                return


def main(argv: list[str]) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C; its exit ends us
    recv = Connection(int(argv[0]), writable=False)
    send = Connection(int(argv[1]), readable=False)
    _serve(recv, send, int(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
