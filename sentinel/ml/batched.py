"""Train many per-symbol networks at once: one TensorFlow graph, weights shaped ``[S, in, out]``.

Why: a Keras fit per symbol costs seconds of Python/graph overhead for a few thousand FLOPs of
work; stacking S networks makes one step do S symbols' work for nearly the same overhead.

Each symbol keeps exactly the semantics of :class:`~sentinel.ml.nn.NNRegressor`: its own scaler,
its own chronological early-stopping slice, its own shuffled mini-batches (masked where its row
count is smaller), per-symbol BatchNorm statistics, dropout, Adam state and step count, and its own
early stopping (a symbol whose validation loss stopped improving is frozen: no more updates, and
its best weights are kept). The result per symbol is a normal fitted ``NNRegressor``.

Random streams: every random draw a symbol sees (initial weights, its shuffle each epoch, its
dropout masks) is a function of the seed, the epoch/step and its own row count only, as if it were
fitted alone with ``random_state=seed``. So a symbol's network does not depend on which or how many
other symbols share the stack, nor on its position in it (per-symbol reductions are the same
arithmetic alone or stacked; only the validation loss is summed over a padded, longer axis).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sentinel.ml import nn_worker
from sentinel.ml._checks import check_Xy
from sentinel.ml._graph import Start, _run_epochs, _Stack, _trainer
from sentinel.ml._scaler import fit_scaler, scaler_class, standardise
from sentinel.ml._weights import DenseBN, NNWeights
from sentinel.ml.ensemble import EnsembleModel, clone
from sentinel.ml.nn import NNRegressor, fold_target, split_counts, target_scaler
from sentinel.ml.validation import (
    purged_split,
    regression_metrics,
    shuffled_split,
    to_days,
    validation_report,
)
from sentinel.ml.xgb import XGBRegressorModel


@dataclass
class BatchedNNResult:
    """Per-symbol outcome of :func:`fit_nn_batched` (``model`` is None when ``error`` is set)."""

    model: NNRegressor | None
    error: str | None = None


def _stack(
    datasets: Sequence[tuple[np.ndarray, np.ndarray]],
    frac: float,
    scale_target: bool,
    purge: Sequence[int],
    fixed: bool,
) -> _Stack:
    """Rows ``[0, a - purge)`` train, ``[a, n)`` are the early-stopping slice (none if fixed)."""
    n_f = datasets[0][0].shape[1]
    cuts = []  # (training rows, start of the early-stopping slice)
    for (_, y), p in zip(datasets, purge, strict=True):
        a = len(y) if fixed else split_counts(len(y), frac)[0]
        cuts.append((a - int(p), a))
    s = len(datasets)
    ntr = max(t for t, _ in cuts)
    nva = max([len(y) - a for (_, y), (_, a) in zip(datasets, cuts, strict=True)] + [1])
    st = _Stack(
        x_tr=np.zeros((s, ntr, n_f), np.float32),
        y_tr=np.zeros((s, ntr), np.float32),
        n_tr=np.array([t for t, _ in cuts], np.int64),
        x_va=np.zeros((s, nva, n_f), np.float32),
        y_va=np.zeros((s, nva), np.float32),
        m_va=np.zeros((s, nva), np.float32),
    )
    for i, ((X, y), (t, a)) in enumerate(zip(datasets, cuts, strict=True)):
        scaler = fit_scaler(X)
        st.scalers.append(scaler)
        xs = standardise(scaler, X)
        y_mean, y_std = target_scaler(y, scale_target)
        st.y_scalers.append((y_mean, y_std))
        y = (y - y_mean) / y_std
        b = len(y) - a
        st.x_tr[i, :t], st.y_tr[i, :t] = xs[:t], y[:t]
        st.x_va[i, :b], st.y_va[i, :b], st.m_va[i, :b] = xs[a:], y[a:], 1.0
    return st


def fit_nn_batched(
    datasets: Sequence[tuple[np.ndarray, np.ndarray]],
    params: NNRegressor | None = None,
    *,
    seed: int | None = None,
    purge: Sequence[int] | None = None,
    epochs: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    init: Sequence[NNRegressor | None] | None = None,
) -> list[BatchedNNResult]:
    """Fit one network per ``(X, y)`` (rows in time order) in a single TensorFlow graph.

    Parameters
    ----------
    datasets
        Per-symbol training sets; sample counts may differ (padding + masks).
    params
        An unfitted :class:`NNRegressor` giving the hyperparameters for all symbols.
    seed
        Overrides ``params.random_state``. A symbol's network depends only on its own data, the
        hyperparameters and this seed, not on the other datasets in the call.
    purge
        Per dataset, rows dropped from the end of the training part because their labels
        overlap the early-stopping slice (the same purge as the validation block's).
    epochs
        Per dataset, a fixed number of epochs on every row: no early-stopping slice, the final
        refit once the epoch count was picked on a purged inner split.
    progress
        Called as ``progress(epoch, last)`` after each epoch of the batched graph (``last``: the
        largest epoch bound); ``(last, last)`` once every network stopped early.
    init
        With ``epochs``: per dataset, a fitted network of the same architecture to start from
        instead of fresh weights (a warm refit; see :func:`warm_start`), or None.

    Returns
    -------
    list of BatchedNNResult
        In input order; invalid inputs fail alone with their error message.
    """
    params = params if params is not None else NNRegressor()
    params._check_params()
    seed = int(params.random_state if seed is None else seed)
    fixed = epochs is not None
    purge = [0] * len(datasets) if purge is None or fixed else list(purge)
    targets = list(epochs) if epochs is not None else [params.max_epochs] * len(datasets)
    if len(purge) != len(datasets) or len(targets) != len(datasets):
        raise ValueError("purge and epochs need one entry per dataset")
    results: list[BatchedNNResult] = [BatchedNNResult(None) for _ in datasets]
    good: list[int] = []
    clean: list[tuple[np.ndarray, np.ndarray]] = []
    n_feat: int | None = None
    for i, (X, y) in enumerate(datasets):
        try:
            Xa, ya = check_Xy(X, y, min_samples=params.min_samples)
            if fixed:
                if int(targets[i]) < 1:
                    raise ValueError(f"epochs must be >= 1, got {targets[i]}")
            elif split_counts(len(ya), params.validation_fraction)[0] - int(purge[i]) < 2:
                raise ValueError(f"too few samples ({len(ya)}) left after purging {purge[i]}")
            if n_feat is not None and Xa.shape[1] != n_feat:
                raise ValueError(f"{Xa.shape[1]} features where other symbols have {n_feat}")
        except ValueError as exc:
            results[i] = BatchedNNResult(None, str(exc))
            continue
        n_feat = Xa.shape[1]
        good.append(i)
        clean.append((Xa, ya))
    if not good:
        return results

    st = _stack(
        clean, params.validation_fraction, params.scale_target, [purge[i] for i in good], fixed
    )
    goal = np.array([int(targets[i]) for i in good], np.int64)
    # fixed epochs: nothing to early-stop on, so patience never fires; symbols freeze at `goal`
    patience = int(goal.max()) + 1 if fixed else int(params.patience)
    start = warm_start(st, [init[i] for i in good], params) if fixed and init else None
    worker = nn_worker.active()
    if worker is not None:  # the same _run_epochs in the training process (sentinel.ml.nn_worker)
        arrays = (st.x_tr, st.y_tr, st.n_tr, st.x_va, st.y_va, st.m_va)
        fits = worker.run_epochs(int(n_feat or 0), params, arrays, goal, fixed, seed, patience,
                                 progress, start)  # fmt: skip
    else:
        tr = _trainer(int(n_feat or 0), params)
        with tr.lock:
            fits = _run_epochs(tr, st, goal, fixed, seed, patience, params.batch_size, progress,
                               start)  # fmt: skip
    n_hidden = len(params.hidden_units)
    for j, i in enumerate(good):
        p, mov, best_loss, best_epoch, n_epochs = fits[j]
        hidden = tuple(
            DenseBN(p[4 * k], p[4 * k + 1], p[4 * k + 2], p[4 * k + 3], mov[2 * k], mov[2 * k + 1])
            for k in range(n_hidden)
        )
        y_mean, y_std = st.y_scalers[j]
        weights = fold_target(NNWeights(hidden, p[-2], p[-1]), y_mean, y_std)
        model = clone(params)._set_state(
            weights,
            st.scalers[j],
            n_samples=len(clean[j][1]),
            best_epoch=int(best_epoch),
            n_epochs=int(n_epochs),
            best_val_loss=float(best_loss) * y_std**2,
        )
        results[i] = BatchedNNResult(model)
    return results


def warm_start(st: _Stack, nets: Sequence[NNRegressor | None], params: NNRegressor) -> Start | None:
    """The stack rows that start from a previous network, in the graph's layouts (or None).

    The previous network saw inputs standardised by its own scaler and predicted returns; the
    stack standardises with scalers fitted now and trains on scaled targets. So its first layer
    and its output layer are rewritten to compute the same function in the stack's units
    (``x_old = x_new * s_new / s_old + (m_new - m_old) / s_old``; ``t = (r - y_mean) / y_std``):
    training resumes from what the network had learnt, not from a shifted copy of it. A network
    of another architecture or feature count is left out (that row starts fresh).
    """
    rows, flats, movs = [], [], []
    units = [int(u) for u in params.hidden_units]
    for j, net in enumerate(nets):
        w = getattr(net, "weights_", None)
        if w is None or [int(h.kernel.shape[1]) for h in w.hidden] != units:
            continue
        sc_old, sc_new = net.scaler_, st.scalers[j]
        if w.hidden[0].kernel.shape[0] != len(sc_new.mean_):  # another feature count
            continue
        ratio = np.asarray(sc_new.scale_, np.float64) / np.asarray(sc_old.scale_, np.float64)
        shift = (np.asarray(sc_new.mean_, np.float64) - sc_old.mean_) / sc_old.scale_
        k0 = np.asarray(w.hidden[0].kernel, np.float64)
        parts: list[np.ndarray] = []
        mov: list[np.ndarray] = []
        for i, layer in enumerate(w.hidden):
            kernel, bias = layer.kernel, layer.bias
            if i == 0:
                kernel, bias = ratio[:, None] * k0, layer.bias + shift @ k0
            parts += [kernel, bias, layer.gamma, layer.beta]
            mov += [layer.moving_mean, layer.moving_var]
        y_mean, y_std = st.y_scalers[j]
        parts += [np.asarray(w.out_kernel, np.float64) / y_std,
                  (np.asarray(w.out_bias, np.float64) - y_mean) / y_std]  # fmt: skip
        rows.append(j)
        flats.append(np.concatenate([np.ravel(a) for a in parts]).astype(np.float32))
        movs.append(np.concatenate([np.ravel(a) for a in mov]).astype(np.float32))
    if not rows:
        return None
    return Start(np.array(rows), np.stack(flats), np.stack(movs))


def prewarm(
    n_feat: int, params: NNRegressor | None = None, threads: int | None = None
) -> threading.Thread:
    """Import TensorFlow and trace the training graphs in a background thread, now.

    Why: a run's first retrain otherwise starts with seconds of TensorFlow import and graph
    tracing while the second core idles; started when a walk-forward run is set up, that work
    overlaps the data load and the feature computation (database reads and NumPy release the
    GIL). Nothing of the warm-up survives: every fit resets all variables first. A failure here
    is left to the real fit to report.

    ``threads``: TensorFlow's intra- and inter-op pool sizes, fixed before its runtime starts
    (None: TensorFlow's default, one per core). A run that trains in process passes 1: the
    XGBoost worker fits beside the network on the other core, and on the 2-core target the
    network's tiny batched ops ran 20-25 % faster on one thread than on two that contend with it
    (the demo run's outputs were identical byte for byte either way).
    """

    def work() -> None:
        try:
            if threads:
                from sentinel.ml._tf import configure_threads  # the import this thread exists for

                configure_threads(threads, threads)
            tr = _trainer(int(n_feat), params if params is not None else NNRegressor())
            with tr.lock:
                tr.warm_up()
        except Exception:  # noqa: BLE001 - the first real fit raises it with context
            pass

    thread = threading.Thread(target=work, name="sentinel-nn-prewarm", daemon=True)
    thread.start()
    return thread


# --- many symbols, end to end: purged validation + final refit -------------------------------


@dataclass
class TrainResult:
    """Outcome for one symbol of :func:`train_many`.

    ``model`` is the final ensemble (None on failure), ``metrics`` the purged-validation
    report (:func:`~sentinel.ml.validation.validation_report`), ``info`` the training window
    for metadata, ``error`` the reason the symbol failed (the others are unaffected).
    """

    symbol: str
    model: Any = None
    metrics: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: (epochs, trees) picked by early stopping in this call; None if given or failed
    counts: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        """True when a model was produced."""
        return self.error is None and self.model is not None


@dataclass
class _Job:
    """One ensemble fit: ``purge`` if early-stopped, ``epochs``/``trees`` if fixed."""

    symbol: str
    role: str  # "val" (inner split, early-stopped), "shuffled" (diagnostic) or "final"
    X: np.ndarray
    y: np.ndarray
    purge: int = 0
    epochs: int | None = None
    trees: int | None = None
    init: NNRegressor | None = None  # a warm refit's starting network (fixed epochs only)


def es_purge(days: np.ndarray, es_fraction: float, gap_days: int) -> int:
    """Training rows (dates sorted) to drop before the early-stopping slice: those dated within
    ``gap_days`` (horizon + embargo) of its first date, whose labels overlap it."""
    a = split_counts(len(days), es_fraction)[0]
    return int(np.sum(days[:a] + np.timedelta64(int(gap_days), "D") >= days[a]))


def _fit_xgb(job: _Job, xgb_t: Any, val_fraction: float) -> Any:
    """One booster: ``job.trees`` fixed, early-stopped on the job's last rows ("val"), or plain;
    a ValueError is returned (not raised) so one bad symbol leaves the others alone."""
    try:
        if job.trees is not None:
            params = {**xgb_t.get_params(), "n_estimators": job.trees}
            return XGBRegressorModel(**params).fit(job.X, job.y)
        if job.role != "val":
            return clone(xgb_t).fit(job.X, job.y)
        a = split_counts(len(job.y), val_fraction)[0]
        es = (job.X[a:], job.y[a:])
        return clone(xgb_t).fit(job.X[: a - job.purge], job.y[: a - job.purge], eval_set=es)
    except ValueError as exc:
        return exc


def _xgb_chain(
    val: _Job | None,
    final: _Job | None,
    xgb_t: Any,
    val_fraction: float,
    keep_val: bool,
    flatten: bool = False,
) -> tuple[Any, Any]:
    """A symbol's boosters, (inner, final): the final one sized by the inner one's early stopping
    (``final.trees`` None) or by given counts (``val`` None). Runs in a worker thread, apart
    from the network's two passes: the tree count needs only the inner booster, so neither
    pipeline waits for the other between passes. ``keep_val`` False: the inner booster is
    returned as its tree count alone (it is not needed once the final one exists). ``flatten``:
    the final booster's trees are also parsed for batched prediction here (see
    :meth:`XGBRegressorModel.flat_trees`)."""
    inner = _fit_xgb(val, xgb_t, val_fraction) if val is not None else None
    if final is None:
        return inner, None
    if final.trees is None:
        if not isinstance(inner, XGBRegressorModel):
            return inner, None
        final.trees = inner.best_n_trees_
        if not keep_val:
            inner = int(inner.best_n_trees_)
    fitted = _fit_xgb(final, xgb_t, val_fraction)
    if flatten and isinstance(fitted, XGBRegressorModel):
        fitted.flat_trees()
    return inner, fitted


def _fit_nets(
    jobs: Sequence[_Job],
    nn_t: NNRegressor,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[tuple[str, str], NNRegressor | str]:
    """Every job's network in one batched graph; an error is kept as text."""
    if not jobs:
        return {}
    fixed = jobs[0].epochs is not None
    if any((j.epochs is not None) != fixed for j in jobs):
        raise ValueError("jobs of one call are either all early-stopped or all fixed")
    fits = fit_nn_batched(
        [(j.X, j.y) for j in jobs], nn_t, seed=seed,
        purge=None if fixed else [j.purge for j in jobs],
        epochs=[int(j.epochs or 0) for j in jobs] if fixed else None, progress=progress,
        init=[j.init for j in jobs] if fixed else None,
    )  # fmt: skip
    return {
        (j.symbol, j.role): r.model if r.model is not None else str(r.error)
        for j, r in zip(jobs, fits, strict=True)
    }


#: Niceness added to the booster threads (Linux: per thread): see :func:`_yield_cpu`.
XGB_NICE = 5


def _yield_cpu() -> None:
    """Run this booster thread at a lower CPU priority than the network's training.

    Why: the networks are a retrain's critical path (the boosters finished first in every retrain
    of the demo), yet two booster threads and the network shared the 2-core target as equals, so
    the network got ~2/3 of a core while they ran. At a lower priority the boosters fill the time
    the network leaves over. Which thread fits a booster, and when, does not change it.
    """
    import os

    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + XGB_NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted: equal priority, as before
        pass


def train_many(
    datasets: Mapping[str, tuple[Any, Any, Any]],
    *,
    nn: NNRegressor | None = None,
    xgb: Any = None,
    nn_weight: float = 0.5,
    horizon_days: int = 14,
    embargo_days: int | None = None,
    val_fraction: float = 0.2,
    leakage_diagnostic: bool = True,
    refit: str = "all",
    xgb_workers: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    metrics: bool = True,
    counts: Mapping[str, tuple[int, int]] | None = None,
    flatten: bool = False,
    warm: Mapping[str, NNRegressor] | None = None,
    warm_share: float = 0.0,
) -> dict[str, TrainResult]:
    """Validate and fit NN + XGBoost ensembles for many symbols at once.

    Parameters
    ----------
    datasets
        ``symbol -> (X, y, dates)``: rows with known labels as of the training day, any order.
    nn, xgb
        Unfitted templates for hyperparameters (notes' defaults when None).
    refit
        ``"all"`` (default): the final model is refitted on every sample given (all labels are
        known, so nothing leaks; the most recent rows matter most for a time series) for the
        epoch and tree counts that early stopping picked on the purged training part (its last
        ``nn.validation_fraction`` rows are the early-stopping slice, purged like the validation
        block), while the metrics describe that inner model on the purged validation block.
        ``"train"``: keep the inner model (cheaper; metrics describe exactly that model).
    xgb_workers
        Threads fitting boosters while TensorFlow trains the networks (xgboost releases the
        GIL; each booster uses one thread). Two: when the networks need less time than the
        boosters (refits with given epoch counts, e.g. ``ml.select_every``), the boosters
        alone fill both cores of the 2-core target instead of one. The boosters do not depend
        on which thread fits them.
    progress
        Called as ``progress(done, total)`` in epoch steps: the inner (early-stopped) pass
        counts up to ``nn.max_epochs``, the refit (``refit="all"``) from there to twice that,
        each scaled to its own epoch bound, so a log shows how far training is.
    metrics
        False: no purged-validation report (``TrainResult.metrics`` stays None): a walk-forward
        run reads only the models.
    flatten
        The final boosters' trees are parsed for batched prediction in the booster worker
        (a walk-forward run scores with them at once; see ``XGBRegressorModel.flat_trees``).
    counts
        ``symbol -> (epochs, trees)`` picked at an earlier date (``ml.select_every``): such a
        symbol skips the early-stopping fit and is fitted once, on every sample, with these
        counts (``refit="all"`` only; no metrics for it, as no model saw a held-out block).
    warm, warm_share
        ``ml.warm_start``: a symbol refitted with given ``counts`` whose previous network is in
        ``warm`` starts from it (:func:`warm_start`) and trains ``ceil(warm_share * epochs)``
        epochs (at least one) instead of ``epochs`` from fresh weights. ``warm_share`` 0: off.

    Returns
    -------
    dict of TrainResult
        Every input symbol, in input order; a bad symbol carries ``error``, the rest go on.
    """
    if refit not in ("all", "train"):
        raise ValueError(f"refit must be 'all' or 'train', got {refit!r}")
    counts = dict(counts or {})
    if counts and refit != "all":
        raise ValueError("counts need refit='all' (they size the refit on every sample)")
    nn_t = nn if nn is not None else NNRegressor(random_state=seed)
    xgb_t = xgb if xgb is not None else XGBRegressorModel(random_state=seed)
    results = {sym: TrainResult(sym) for sym in datasets}
    embargo = int(horizon_days if embargo_days is None else embargo_days)
    jobs: list[_Job] = []
    prepared: dict[str, dict[str, Any]] = {}
    for sym, (X, y, dates) in datasets.items():
        try:
            Xa, ya = check_Xy(X, y, min_samples=nn_t.min_samples)
            d = to_days(dates)
            if len(d) != len(ya):
                raise ValueError(f"{len(d)} dates for {len(ya)} samples")
            order = np.argsort(d, kind="stable")
            Xa, ya, d = Xa[order], ya[order], d[order]
            split = purged_split(
                d, horizon_days, val_fraction=val_fraction, embargo_days=embargo_days
            )
            tr = split.train_idx
            check_Xy(Xa[tr], ya[tr], min_samples=nn_t.min_samples)
            purge = es_purge(d[tr], nn_t.validation_fraction, horizon_days + embargo)
        except ValueError as exc:
            results[sym].error = f"{sym}: {exc}"
            continue
        prepared[sym] = {"X": Xa, "y": ya, "d": d, "split": split}
        if sym in counts:
            continue  # counts picked earlier: the refit below is its only fit
        jobs.append(_Job(sym, "val", Xa[tr], ya[tr], purge=purge))
        if leakage_diagnostic:
            s_tr, s_va = shuffled_split(len(ya), val_fraction, seed)
            prepared[sym]["shuffled"] = (s_tr, s_va)
            jobs.append(_Job(sym, "shuffled", Xa[s_tr], ya[s_tr]))

    bound = int(nn_t.max_epochs)
    total = bound * (2 if refit == "all" else 1)

    def phase(k: int) -> Callable[[int, int], None] | None:
        report = progress
        if report is None:
            return None
        return lambda epoch, last: report(k * bound + round(bound * epoch / max(1, last)), total)

    vf = nn_t.validation_fraction
    fitted: dict[tuple[str, str], EnsembleModel | str] = {}
    boosters: dict[tuple[str, str], Any] = {}  # (symbol, role) -> booster, ValueError or trees
    scaler_class()  # import scikit-learn here, not in two threads at once
    with ThreadPoolExecutor(max_workers=max(1, xgb_workers), initializer=_yield_cpu) as pool:
        # the boosters of every symbol (inner, then final) run in the worker while TensorFlow
        # trains the networks; a run's first retrain also overlaps TensorFlow's import with them
        chains: dict[str, Any] = {}
        others: dict[tuple[str, str], Any] = {}
        for job in jobs:
            p = prepared[job.symbol]
            if job.role == "val":
                final = _Job(job.symbol, "final", p["X"], p["y"]) if refit == "all" else None
                chains[job.symbol] = pool.submit(_xgb_chain, job, final, xgb_t, vf, metrics,
                                                 flatten)  # fmt: skip
            else:
                others[(job.symbol, job.role)] = pool.submit(_fit_xgb, job, xgb_t, vf)
        for sym in counts:
            if sym in prepared:
                p, n_tr = prepared[sym], max(1, int(counts[sym][1]))
                final = _Job(sym, "final", p["X"], p["y"], trees=n_tr)
                chains[sym] = pool.submit(_xgb_chain, None, final, xgb_t, vf, False, flatten)
        nets = _fit_nets(jobs, nn_t, seed, phase(0))
        if refit == "all":  # every known row, with the epochs picked on the inner split
            finals = []
            for sym, p in prepared.items():
                v = nets.get((sym, "val"))
                init = None
                if sym in counts:
                    n_ep = max(1, int(counts[sym][0]))
                    init = (warm or {}).get(sym) if warm_share > 0 else None
                    if init is not None:
                        n_ep = max(1, math.ceil(warm_share * n_ep))
                elif isinstance(v, NNRegressor):
                    n_ep = max(1, v.best_epoch_)
                else:
                    continue
                finals.append(_Job(sym, "final", p["X"], p["y"], epochs=n_ep, init=init))
            val_loss = {
                k[0]: v.best_val_loss_
                for k, v in nets.items()
                if k[1] == "val" and isinstance(v, NNRegressor)
            }
            if not metrics:  # the inner networks only picked the counts: free them first
                for k in [k for k, v in nets.items() if isinstance(v, NNRegressor)]:
                    del nets[k]
            nets.update(_fit_nets(finals, nn_t, seed, phase(1)))
            for job in finals:  # the loss that picked the epoch count describes the refit too
                f = nets[(job.symbol, "final")]
                if isinstance(f, NNRegressor) and job.symbol in val_loss:
                    f.best_val_loss_ = val_loss[job.symbol]
        for sym, fut in chains.items():
            boosters[(sym, "val")], boosters[(sym, "final")] = fut.result()
        boosters.update({k: f.result() for k, f in others.items()})
    for key, net in nets.items():
        bst = boosters.get(key)
        if isinstance(net, str):
            fitted[key] = net
        elif isinstance(bst, Exception):
            fitted[key] = str(bst)
        elif isinstance(bst, XGBRegressorModel):
            fitted[key] = EnsembleModel(nn_t, xgb_t, nn_weight).set_members(net, bst)
    for key, bst in boosters.items():  # a booster that failed where the network did not run
        if isinstance(bst, Exception) and key not in fitted:
            fitted[key] = str(bst)
    for sym in prepared:  # the counts picked now (given counts are not re-reported)
        fin = fitted.get((sym, "final"))
        if sym not in counts and isinstance(fin, EnsembleModel):
            results[sym].counts = (int(fin.nn_.best_epoch_), int(fin.xgb_.best_n_trees_))

    for sym, p in prepared.items():
        roles = ["val", "shuffled", "final"]
        errors = [f for r in roles if isinstance(f := fitted.get((sym, r)), str)]
        if errors:
            results[sym].error = f"{sym}: {errors[0]}"
            continue
        X, y, d, split = p["X"], p["y"], p["d"], p["split"]
        val_model = fitted.get((sym, "val"))
        final = fitted[(sym, "final")] if refit == "all" else val_model
        assert isinstance(final, EnsembleModel)
        used = np.arange(len(y)) if refit == "all" else split.train_idx
        results[sym].model = final
        if metrics and isinstance(val_model, EnsembleModel):
            shuffled = None
            if leakage_diagnostic:
                s_model = fitted[(sym, "shuffled")]
                assert isinstance(s_model, EnsembleModel)
                s_va = p["shuffled"][1]
                shuffled = regression_metrics(y[s_va], s_model.predict(X[s_va]))
            Xv = X[split.val_idx]
            results[sym].metrics = validation_report(
                y[split.val_idx],
                val_model.predict_components(Xv),
                Xv,
                split,
                X_train=X[split.train_idx],
                y_train=y[split.train_idx],
                shuffled=shuffled,
                n_trained=len(used),
            )
        last = d[used].max()
        results[sym].info = {
            "n_samples": int(len(used)),
            "train_start": str(d[used].min()),
            "train_end": str(last),
            "label_known_at": str(last + np.timedelta64(int(horizon_days), "D")),
            "horizon_days": int(horizon_days),
            "refit": refit,
            "nn_epochs": int(final.nn_.best_epoch_),
            "xgb_trees": int(final.xgb_.best_n_trees_),
        }
    return results
