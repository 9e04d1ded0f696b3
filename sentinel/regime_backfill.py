"""Backfill of ``regime_states``: the HMM regime of every (symbol, date), from data up to that date.

Why this shape
--------------
- **Same values as the as-of API, far fewer fits.** Each symbol's rows come from one
  :func:`sentinel.regime.regime_history` call over its bars: one model per monthly cut-off and a
  forward filter ending at each date, i.e. what :meth:`RegimeDetector.detect_regime_as_of` returns
  for that date (the tests compare them; ``verify`` re-checks sampled dates through a simulation
  view of the store). One ``detect_regime_as_of`` call per date would refit or re-read per row.
- **Resumable.** Dates already in the table are skipped, so a run that is killed and restarted
  loses at most the rows of its last, uncommitted batch.
- **Periodic commits.** Rows are written in batches of ``commit_every``, each in its own
  transaction, through the store's idempotent upsert.
- **Isolated failures.** A symbol that fails is recorded in the report; the others go on.
- **Parallel where it pays.** Symbols are independent: the HMM work runs in a process pool of
  pure functions (no database access in the workers); the parent alone reads bars and writes rows.
- **One thread per fit.** hmmlearn initialises each fit with scikit-learn's KMeans, whose OpenMP
  threads make a 2-core machine ~8x slower on these tiny problems; the work runs under
  ``threadpool_limits(1)`` (parallelism comes from the process pool instead).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sentinel.db import Store
from sentinel.regime import RegimeDetector, _HmmParams, regime_history
from sentinel.timeutil import DateLike, to_date

DEFAULT_COMMIT_EVERY = 5_000
DEFAULT_WORKERS = 2
#: Regime and confidence must match the one-date path to this tolerance (KMeans' summation order
#: may differ by ~1e-12 between processes with different thread settings).
VERIFY_TOLERANCE = 1e-9

__all__ = [
    "DEFAULT_COMMIT_EVERY",
    "DEFAULT_WORKERS",
    "BackfillMismatchError",
    "BackfillReport",
    "backfill_regime_states",
    "symbol_regime_rows",
    "verify_rows",
]

#: One computed row: (date, regime, regime_name, confidence).
Row = tuple[date, int, str, float]


@dataclass
class BackfillReport:
    """What a backfill did; passed to the progress callback after every symbol."""

    symbols: int = 0
    symbols_done: int = 0
    rows_written: int = 0
    rows_existing: int = 0
    batches: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class BackfillMismatchError(AssertionError):
    """A backfilled row differs from ``detect_regime_as_of`` on the same date."""


# ----------------------------------------------------------------------------- pure work
def symbol_regime_rows(
    closes: pd.Series, dates: Sequence[pd.Timestamp], params: dict[str, int] | None = None
) -> list[Row]:
    """HMM regime rows of one symbol for ``dates`` from its ``closes`` (dates without enough
    history are left out). Pure: runs in a worker process."""
    if not len(dates):
        return []
    frame = pd.DataFrame({"close": closes})
    with threadpool_limits(limits=1):
        history = regime_history(frame, dates=dates, **(params or {}))
    return [
        (ts.date(), int(regime), str(name), float(conf))
        for ts, regime, name, conf in zip(
            history.index,
            history["regime"].to_numpy(),
            history["regime_name"].to_numpy(),
            history["confidence"].to_numpy(),
            strict=True,
        )
    ]


def _worker(
    symbol: str, closes: pd.Series, dates: list[pd.Timestamp], params: dict[str, int]
) -> tuple[str, list[Row] | None, str | None]:
    """Pool entry point: rows or the error text, never an exception (one symbol, one fate)."""
    try:
        return symbol, symbol_regime_rows(closes, dates, params), None
    except Exception as exc:  # noqa: BLE001 - reported per symbol; the run goes on
        return symbol, None, f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- checks
def verify_rows(
    store: Store, symbol: str, rows: Sequence[Row], n: int, params: dict[str, int] | None = None
) -> None:
    """Recompute ``n`` evenly spaced rows with ``detect_regime_as_of`` on a view of the store
    bounded at each date (so the check itself cannot see the future); raise on a difference."""
    if n <= 0 or not rows:
        return
    picks = sorted({int(i) for i in np.linspace(0, len(rows) - 1, min(n, len(rows)))})
    for i in picks:
        d, regime, name, conf = rows[i]
        detector = RegimeDetector(store.view(d).market, **(params or {}))
        with threadpool_limits(limits=1):
            one = detector.detect_regime_as_of(symbol, d.isoformat())
        if (
            one is None
            or one["regime"] != regime
            or one["regime_name"] != name
            or abs(one["confidence"] - conf) > VERIFY_TOLERANCE
        ):
            raise BackfillMismatchError(
                f"{symbol} {d}: backfill gave {(regime, name, conf)}, as-of gave {one}"
            )


# ----------------------------------------------------------------------------- the backfill
def _pending_dates(
    store: Store, symbol: str, start: date | None, end: date | None, min_rows: int
) -> tuple[pd.Series, list[pd.Timestamp], int]:
    """The symbol's closes up to ``end``; its bar dates in [start, end] that can have a regime
    (``min_rows`` valid bars up to the month cut-off) and have no row yet; how many had one."""
    closes = store.market.get_prices(symbol, end_date=end)["close"]
    valid = closes[np.isfinite(closes.to_numpy()) & (closes.to_numpy() > 0)]
    dates = valid.index if start is None else valid.index[valid.index >= pd.Timestamp(start)]
    if len(valid) >= min_rows:  # the first month whose cut-off has min_rows bars before it
        first = valid.index[min_rows - 1].to_period("M").end_time.normalize() + pd.Timedelta(days=1)
        dates = dates[dates >= first]
    else:
        dates = dates[:0]
    have = store.signals.existing_regime_dates(symbol)
    todo = [ts for ts in dates if ts.date() not in have]
    return closes, todo, len(dates) - len(todo)


def _pool(workers: int) -> ProcessPoolExecutor:
    """A forkserver pool: children do not inherit the parent's threads (Rich's refresh thread,
    the database driver); the heavy imports are preloaded once in the server."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["sentinel.regime_backfill"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def backfill_regime_states(
    store: Store,
    symbols: Iterable[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    commit_every: int = DEFAULT_COMMIT_EVERY,
    workers: int = DEFAULT_WORKERS,
    verify: int = 0,
    on_progress: Callable[[BackfillReport], None] | None = None,
    **hmm_params: int,
) -> BackfillReport:
    """Fill ``regime_states`` for every bar date of ``symbols`` (default: every known security)
    in [``start``, ``end``] that has enough history and no row yet.

    ``workers`` > 1 computes symbols in a process pool; ``verify`` > 0 re-checks that many
    sampled rows per symbol against :meth:`RegimeDetector.detect_regime_as_of` before writing
    them; ``hmm_params`` override the HMM settings (see :func:`sentinel.regime.regime_as_of`).
    """
    if commit_every < 1:
        raise ValueError(f"commit_every must be >= 1, got {commit_every}")
    t0 = time.perf_counter()
    s = None if start is None else to_date(start)
    e = None if end is None else to_date(end)
    syms = list(symbols) if symbols is not None else [x.symbol for x in store.market.securities()]
    report = BackfillReport(symbols=len(syms))
    min_rows = _HmmParams(**hmm_params).min_rows  # also rejects unknown settings up front
    buffer: list[dict[str, Any]] = []

    def flush(final: bool) -> None:
        while len(buffer) >= commit_every or (final and buffer):
            batch = buffer[:commit_every]
            store.signals.upsert_regime_states(batch)  # one transaction per batch
            del buffer[: len(batch)]
            report.rows_written += len(batch)
            report.batches += 1

    def finish(symbol: str, rows: list[Row] | None, error: str | None) -> None:
        if error is None and rows:
            try:
                verify_rows(store, symbol, rows, verify, hmm_params)
            except Exception as exc:  # noqa: BLE001 - a mismatch fails this symbol only
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            report.failures[symbol] = error
        else:
            buffer.extend(
                {"symbol": symbol, "date": d, "regime": r, "regime_name": n, "confidence": c}
                for d, r, n, c in rows or []
            )
            flush(final=False)
        report.symbols_done += 1
        report.seconds = time.perf_counter() - t0
        if on_progress is not None:
            on_progress(report)

    def prepare(symbol: str) -> tuple[pd.Series, list[pd.Timestamp]] | None:
        try:
            closes, todo, existing = _pending_dates(store, symbol, s, e, min_rows)
        except Exception as exc:  # noqa: BLE001 - an unreadable symbol fails alone
            finish(symbol, None, f"{type(exc).__name__}: {exc}")
            return None
        report.rows_existing += existing
        if not todo:
            finish(symbol, [], None)
            return None
        return closes, todo

    pool: ProcessPoolExecutor | None = None
    pending: dict[Future, str] = {}

    def collect(limit: int) -> None:
        while len(pending) > limit:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                symbol = pending.pop(fut)
                exc = fut.exception()  # only when the worker process itself died
                finish(*(fut.result() if exc is None else (symbol, None, repr(exc))))

    def submit(symbol: str, job: tuple[pd.Series, list[pd.Timestamp]]) -> None:
        nonlocal pool
        for attempt in (1, 2):
            if pool is None:  # started only when there is work: a rerun costs no start-up
                pool = _pool(workers)
            try:
                pending[pool.submit(_worker, symbol, *job, hmm_params)] = symbol
                return
            except BrokenProcessPool:  # a worker died (e.g. out of memory): start a new pool
                collect(0)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = None
                if attempt == 2:
                    raise

    try:
        for symbol in syms:
            job = prepare(symbol)
            if job is None:
                continue
            if workers <= 1 or len(syms) <= 1:
                finish(*_worker(symbol, *job, hmm_params))
            else:
                submit(symbol, job)
                collect(2 * workers - 1)  # bounded: bars are read shortly before they are used
        collect(0)
    except KeyboardInterrupt:
        flush(final=True)  # the rows computed so far are complete and correct: keep them
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    flush(final=True)
    report.seconds = time.perf_counter() - t0
    if on_progress is not None:
        on_progress(report)
    return report
