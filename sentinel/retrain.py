"""One retrain at a time, shared by the API and the weekly job, with progress others can read.

Training is minutes of CPU on real universes: the API must be able to start it in the background
and answer ``/api/ml/status`` meanwhile, and a second request (or the Sunday job) must not start a
concurrent pass that would race on the same model folders. A non-blocking lock taken *by the
caller* (not by the worker thread) makes the second request fail at once with
:class:`RetrainBusyError` (the API's 409).

Settings are read from the store at the start of every pass (``effective_settings``), so a
horizon or minimum changed through ``/api/settings`` is what the next retrain uses; so is
``ml_model``: ``pooled`` / ``hierarchical`` train one model over the universe (on ``ml_target``)
and save it as ``_pooled`` (:meth:`~sentinel.ml.model_files.ModelStore.save_pooled`).

With ``isolated=True`` (what ``sentinel serve`` uses) each pass runs in a spawned child process at
the lowest CPU priority (``nice`` 19) with TensorFlow, XGBoost and BLAS on one thread: the
server's interpreter never shares its GIL with training (a thread, even niced, holds the GIL
through Python-level parts of Keras and, when descheduled, stalls every request). Progress and the
result come back through a ``multiprocessing`` queue; the lock, the 409 and the progress stay in
the parent, so the API contract is the same in both modes.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sentinel.db import Store
from sentinel.errors import SentinelError
from sentinel.lifeline import tie_to_parent
from sentinel.settings import Settings, effective_settings, get_settings

log = logging.getLogger(__name__)

State = Literal["idle", "running", "completed", "failed"]


class RetrainBusyError(SentinelError):
    """A retrain was asked for while another one runs."""

    def __init__(self, since: str | None):
        super().__init__(
            f"a retrain is already running (started {since}); "
            "wait for it to finish (GET /api/ml/status shows its progress)"
        )


@dataclass
class RetrainProgress:
    """What ``/api/ml/status`` shows under ``retrain``: the running or the last pass."""

    state: State = "idle"
    phase: str | None = None
    trigger: str | None = None
    symbols: list[str] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    done: int = 0
    total: int = 0
    message: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    history: list[str] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        out = asdict(self)
        out["history"] = out["history"][-20:]
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RetrainManager:
    """Runs training passes one at a time, in the caller's thread or a background thread.

    Parameters
    ----------
    store:
        The store whose samples are trained on and where model records are written.
    settings:
        Base settings (env); the ml_* overrides stored in the database are applied per pass.
    models_dir:
        Where models are saved (default: ``settings.models_dir``).
    max_epochs, min_samples, validate:
        Training knobs; ``min_samples`` overrides ``ml_min_samples_per_symbol`` (tests use tiny
        values so a pass takes seconds).
    tf_threads:
        TensorFlow intra/inter-op threads, set before the first pass (1 leaves the other core to
        the web server on the 2-core target); None leaves TensorFlow's defaults.
    nice:
        OS priority increment of the background thread (or of the child process with
        ``isolated``), so request handling wins the CPU while a pass runs (0 leaves it unchanged).
    isolated:
        Run each pass in a spawned child process (lowest priority, one thread for TensorFlow,
        XGBoost and BLAS) instead of this process; needs a database other processes can open
        (an in-memory SQLite store falls back to this process).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        models_dir: Path | None = None,
        max_epochs: int = 100,
        min_samples: int | None = None,
        validate: bool = True,
        tf_threads: int | None = 1,
        incremental_days: int = 90,
        nice: int = 10,
        isolated: bool = False,
    ):
        self.store = store
        self.base = settings or get_settings()
        self.models_dir = Path(models_dir) if models_dir else self.base.models_dir
        self.max_epochs = max_epochs
        self.min_samples = min_samples
        self.validate = validate
        self.tf_threads = tf_threads
        self.incremental_days = incremental_days
        self.nice = nice
        self.isolated = isolated
        self._lock = threading.Lock()
        self._progress = RetrainProgress()
        self._thread: threading.Thread | None = None
        self._child: Any = None  # the training process of an isolated pass

    # -- reading ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._lock.locked()

    def status(self) -> dict[str, Any]:
        """A copy of the progress of the running (or last) pass."""
        return self._progress.snapshot()

    def settings(self) -> Settings:
        """The settings the next pass uses: env plus the overrides stored through the API."""
        return effective_settings(self.store.records.get_stored_settings(), self.base)

    # -- running ---------------------------------------------------------------------------
    def run(
        self,
        symbols: Iterable[str] | None = None,
        *,
        refresh_samples: bool = False,
        trigger: str = "api",
    ) -> dict[str, Any]:
        """Train now in this thread and return the notes' completed shape.

        Raises :class:`RetrainBusyError` at once if another pass runs.
        """
        wanted = _listed(symbols)
        self._acquire()
        self._begin(wanted, trigger)
        return self._guarded(wanted, refresh_samples)

    def start(
        self,
        symbols: Iterable[str] | None = None,
        *,
        refresh_samples: bool = False,
        trigger: str = "api",
    ) -> dict[str, Any]:
        """Start a pass in a background thread; returns the initial progress at once."""
        wanted = _listed(symbols)
        self._acquire()
        self._begin(wanted, trigger)
        self._thread = threading.Thread(
            target=self._background,
            args=(wanted, refresh_samples),
            name="sentinel-retrain",
            daemon=True,
        )
        try:
            self._thread.start()
        except BaseException:
            self._lock.release()
            raise
        return self.status()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background pass (tests, shutdown); True when none is left running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def shutdown(self) -> None:
        """Stop an isolated pass's training process (the server is exiting); the pass fails."""
        child = self._child
        if child is not None and child.is_alive():
            child.kill()
            child.join(5)

    def _acquire(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RetrainBusyError(self._progress.started_at)

    def _begin(self, symbols: list[str] | None, trigger: str) -> None:
        self._progress = RetrainProgress(
            state="running", phase="starting", trigger=trigger, symbols=symbols,
            started_at=_now(),
        )  # fmt: skip

    def _background(self, symbols: list[str] | None, refresh_samples: bool) -> None:
        # Linux: per-thread; TensorFlow's pool threads created here inherit it (isolated: the
        # child process lowers its own priority instead)
        if self.nice and not self._isolating():
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        # a failure is already logged and recorded in the progress; nothing to re-raise to
        with contextlib.suppress(Exception):
            self._guarded(symbols, refresh_samples)

    def _guarded(self, symbols: list[str] | None, refresh_samples: bool) -> dict[str, Any]:
        """Run one pass holding the lock (already taken by the caller) and record its outcome."""
        try:
            result = self._pass(symbols, refresh_samples)
        except Exception as exc:  # noqa: BLE001 - a failed pass is reported, never kills the server
            log.exception("retrain failed")
            p = self._progress
            p.state, p.phase, p.error, p.finished_at = "failed", "failed", repr(exc), _now()
            self._lock.release()
            raise
        p = self._progress
        p.state, p.phase, p.result, p.finished_at = "completed", "done", result, _now()
        self._lock.release()
        return result

    def _step(self, phase: str, message: str | None = None, *, done: int = 0, total: int = 0):
        p = self._progress
        p.phase, p.message, p.done, p.total = phase, message, done, total
        if message:
            p.history.append(f"{_now()} {message}")
            log.info("retrain: %s", message)

    def _pass(self, symbols: list[str] | None, refresh_samples: bool) -> dict[str, Any]:
        """One pass: in a child process with ``isolated``, else in this thread."""
        if self._isolating():
            return self._pass_in_child(symbols, refresh_samples)
        return self._pass_here(symbols, refresh_samples)

    def _isolating(self) -> bool:
        return self.isolated and _shareable_url(self.store) is not None

    def _pass_in_child(self, symbols: list[str] | None, refresh_samples: bool) -> dict[str, Any]:
        """Run :meth:`_pass_here` in a spawned child; relay its steps; return or raise its end."""
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        job = {
            "url": _shareable_url(self.store), "settings": self.base,
            "models_dir": self.models_dir, "max_epochs": self.max_epochs,
            "min_samples": self.min_samples, "validate": self.validate,
            "incremental_days": self.incremental_days, "nice": 19 if self.nice else 0,
            "symbols": symbols, "refresh_samples": refresh_samples, "parent_pid": os.getpid(),
        }  # fmt: skip
        self._step("starting", "starting the training process")
        proc = ctx.Process(target=_child_main, args=(job, q), name="sentinel-retrain", daemon=True)
        proc.start()
        self._child = proc
        try:
            while True:
                try:
                    kind, *payload = q.get(timeout=0.5)
                except queue.Empty:
                    if proc.is_alive():
                        continue
                    try:  # it may have exited right after its last message
                        kind, *payload = q.get(timeout=1.0)
                    except queue.Empty:
                        raise RuntimeError(
                            f"the training process exited with code {proc.exitcode} "
                            "without a result"
                        ) from None
                if kind == "step":
                    phase, message, done, total = payload
                    self._step(phase, message, done=done, total=total)
                elif kind == "result":
                    return payload[0]
                else:
                    raise RuntimeError(f"training process failed: {payload[0]}")
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            self._child = None
            q.close()

    def _pass_here(self, symbols: list[str] | None, refresh_samples: bool) -> dict[str, Any]:
        # lazy: the API imports this module; training code loads on the first retrain
        from sentinel.ml.training import TrainReport, save_models, train_as_of

        s = self.settings()
        horizon = s.ml_prediction_horizon_days
        min_samples = self.min_samples or s.ml_min_samples_per_symbol
        if refresh_samples:
            self._refresh_samples(horizon)
        if self.tf_threads:
            self._step("loading TensorFlow")
            from sentinel.ml._tf import configure_threads  # lazy: TensorFlow

            configure_threads(self.tf_threads, self.tf_threads)
        kind = s.ml_model
        pooled = kind != "per_symbol"
        self._step("training", f"training a {kind} model on stored samples" if pooled
                   else "training on stored samples (one batched pass)")  # fmt: skip
        report = train_as_of(
            self.store, symbols=symbols, horizon_days=horizon, min_samples=min_samples,
            max_epochs=self.max_epochs, validate=self.validate,
            progress=lambda msg: self._step("training", msg),
            model=kind, target=s.ml_target if pooled else "return",
        )  # fmt: skip
        if pooled:  # one model for the universe (residual models inside it): one save
            if report.predictor is not None:
                self._step("saving", f"saving the {kind} model", done=0, total=1)
                save_models(self.store, report, self.models_dir, horizon_days=horizon)
                self._step("saving", f"saved the {kind} model", done=1, total=1)
            return report.summary()
        names = sorted(report.models)
        for i, sym in enumerate(names):
            self._step("saving", f"saving {sym}" if i == 0 else None, done=i, total=len(names))
            one = TrainReport(
                report.as_of, models={sym: report.models[sym]},
                metrics={sym: report.metrics.get(sym, {})}, samples={sym: report.samples[sym]},
            )  # fmt: skip
            save_models(self.store, one, self.models_dir, horizon_days=horizon)
        self._step("saving", f"saved {len(names)} models", done=len(names), total=len(names))
        return report.summary()

    def _refresh_samples(self, horizon: int) -> None:
        """New samples (last ``incremental_days`` for known symbols, all for new ones); drift data.

        A security imported since the last pass has no samples yet; the notes' 90-day window
        would give it a dozen and it would wait months for a model. Its whole history instead
        lets it reach ``ml_min_samples_per_symbol`` on the first Sunday (no manual step). Stored
        predictions whose horizon has passed get their realised return (``/api/ml/performance``).
        """
        from sentinel.ml.dataset import FeatureBook, generate_samples  # lazy: see _pass_here

        self._step("samples", "computing features")
        book = FeatureBook(self.store)
        have = _sample_symbols(self.store, horizon)
        new = [s for s in book.symbols if s not in have]
        known = [s for s in book.symbols if s in have]
        n = 0
        if known:
            self._step("samples", f"incremental samples ({self.incremental_days} days)")
            n += sum(
                generate_samples(
                    self.store, known, horizon_days=horizon, book=book,
                    incremental_days=self.incremental_days,
                ).values()
            )  # fmt: skip
        if new:
            self._step("samples", f"full samples for {len(new)} new symbols")
            n += sum(generate_samples(self.store, new, horizon_days=horizon, book=book).values())
        self._step("samples", f"{n} samples written for {len(book.symbols)} symbols")
        from sentinel.ml.drift import update_realized_returns  # lazy: see _pass_here

        filled = update_realized_returns(self.store, horizon_days=horizon)
        self._step("samples", f"{filled} matured predictions got their realised return")


def _shareable_url(store: Store) -> str | None:
    """The store's URL if another process can open the same database (not in-memory SQLite)."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


#: Thread-count variables read by OpenMP, OpenBLAS, MKL and numexpr when they load.
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")  # fmt: skip


class _ChildManager(RetrainManager):
    """The pass inside the child process: every step goes to the parent's queue."""

    def __init__(self, store: Store, q: Any, **kw: Any):
        super().__init__(store, **kw)
        self._queue = q

    def _step(self, phase: str, message: str | None = None, *, done: int = 0, total: int = 0):
        self._queue.put(("step", phase, message, done, total))


def _child_main(job: dict[str, Any], q: Any) -> None:
    """Entry point of the spawned training process (lowest priority, one thread everywhere)."""
    # dies with the server even on kill -9, also when the server died while this one imported
    tie_to_parent(job["parent_pid"])
    with contextlib.suppress(OSError, AttributeError):
        os.nice(job["nice"])
    for var in _ONE_THREAD:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits  # lazy: only the spawned child limits threads

        threadpool_limits(1)  # numpy's BLAS is already loaded (sentinel.db imports it)
    except Exception:  # noqa: BLE001 - an optional nicety
        pass
    try:
        store = Store(job["url"])
        manager = _ChildManager(
            store, q, settings=job["settings"], models_dir=job["models_dir"],
            max_epochs=job["max_epochs"], min_samples=job["min_samples"],
            validate=job["validate"], tf_threads=1, incremental_days=job["incremental_days"],
            nice=0,
        )  # fmt: skip
        result = manager._pass_here(job["symbols"], job["refresh_samples"])
        store.engine.dispose()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        log.exception("retrain (training process) failed")
        q.put(("error", repr(exc)))
    else:
        q.put(("result", result))
    q.close()
    q.join_thread()


def _listed(symbols: Iterable[str] | None) -> list[str] | None:
    return None if symbols is None else list(symbols)


def _sample_symbols(store: Store, horizon: int) -> set[str]:
    """Symbols with any training sample (one indexed query, no feature parsing)."""
    return store.signals.symbols_with_samples(horizon)
