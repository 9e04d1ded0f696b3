"""The TensorFlow graph that trains a stack of per-symbol networks, and its epoch loop.

A leaf module on purpose (NumPy and TensorFlow only; no pandas, scikit-learn or XGBoost): the
network-training process (:mod:`sentinel.ml.nn_worker`) imports it right after TensorFlow, and
every import on that path delays a run's first retrain. :mod:`sentinel.ml.batched` prepares the
stacks (scalers, padding, purges) and turns the weights back into fitted ``NNRegressor``s; see
its docstring for the per-symbol semantics and random streams.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sentinel.ml._weights import BN_EPSILON

_ADAM_B1, _ADAM_B2, _ADAM_EPS = 0.9, 0.999, 1e-7  # Keras Adam defaults
_BN_MOMENTUM = 0.99  # Keras BatchNormalization default


@dataclass
class _Stack:
    """Padded, scaled per-symbol arrays in float32."""

    x_tr: np.ndarray  # [S, Ntr, F]
    y_tr: np.ndarray  # [S, Ntr]
    n_tr: np.ndarray  # [S]
    x_va: np.ndarray  # [S, Nva, F]
    y_va: np.ndarray  # [S, Nva]
    m_va: np.ndarray  # [S, Nva]
    scalers: list[Any] = field(default_factory=list)  # sklearn StandardScaler per symbol
    y_scalers: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Start:
    """Initial weights for some rows of a stack (a warm refit): ``flat`` ``[k, P]`` and
    ``moving`` ``[k, M]`` in :class:`_Trainer`'s layouts, for stack rows ``rows`` ``[k]``."""

    rows: np.ndarray
    flat: np.ndarray
    moving: np.ndarray


_RULE = threading.local()  # .on: this thread is tracing a _Trainer graph
_HOOK = threading.Lock()


def _infer_reduction_axes_here(original: Callable[..., Any]) -> Callable[..., Any]:
    """TensorFlow's static inference of a broadcasting op's gradient axes, told one fact about
    this graph: an axis that is unknown (None) on both sides is the same axis on both.

    Why: the stack's symbol and row axes are dynamic (one traced graph serves every stack), so
    TensorFlow cannot tell statically which axes of ``h + b[:, None, :]`` were broadcast, and for
    every broadcasting op's gradient it adds run-time shape ops (Shape, BroadcastGradientArgs,
    a Sum over the axes found, a Reshape). In this graph broadcasting happens only on axes of
    static size 1, and both dynamic axes always agree (every tensor of a step has the stack's
    symbols first and the batch's rows second), so the axes are known when tracing. The reduced
    ops are the same ``Sum``s over the same axes, so the gradients are the same bits (tested
    against the graph traced without this); the while body loses ~90 of ~1,090 nodes and a step
    ~20 % of its time (the demo's ten passes, interleaved runs). Only a thread that is tracing
    a ``_Trainer`` graph sees this (``_RULE``); every other trace gets TensorFlow's own answer.
    """

    def infer(x_shape: Any, y_shape: Any) -> tuple[Any, Any]:
        if not getattr(_RULE, "on", False) or x_shape.rank is None or x_shape.rank != y_shape.rank:
            return original(x_shape, y_shape)
        x_axes, y_axes = [], []
        for axis, (a, b) in enumerate(zip(x_shape.as_list(), y_shape.as_list(), strict=True)):
            if a == 1 and b != 1:
                x_axes.append(axis)
            elif b == 1 and a != 1:
                y_axes.append(axis)
            elif a is None and b is None:
                continue  # the stack's symbol or row axis on both sides
            elif a is None or b is None:
                return original(x_shape, y_shape)
        return x_axes, y_axes

    infer.original = original  # type: ignore[attr-defined]
    return infer


@contextlib.contextmanager
def _known_broadcast_axes() -> Iterator[None]:
    """Trace under :func:`_infer_reduction_axes_here` (a no-op if TensorFlow lacks the hook)."""
    from tensorflow.python.ops import math_grad  # the hook is private: checked, not assumed

    current = getattr(math_grad, "_InferGradientReductionAxes", None)
    if current is None:
        yield
        return
    if not hasattr(current, "original"):
        with _HOOK:
            if not hasattr(math_grad._InferGradientReductionAxes, "original"):
                math_grad._InferGradientReductionAxes = _infer_reduction_axes_here(current)
    _RULE.on = True
    try:
        yield
    finally:
        _RULE.on = False


def _glorot(rng: np.random.Generator, s: int, fan_in: int, fan_out: int) -> np.ndarray:
    """One Glorot-uniform draw repeated for every symbol (see "Random streams" above)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    w = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
    return np.repeat(w[None], s, axis=0)


class _Trainer:
    """The TensorFlow part: variables for a stack of networks and one compiled epoch function.

    Built once per process and architecture (:func:`_trainer`) and reused by every call: the
    variables have a free leading (symbol) dimension and the epoch function a fully dynamic input
    signature, so a new retrain, a different number of symbols or rows, or a smaller stack after
    finished symbols leave it (:meth:`keep`) re-assigns values and never retraces the graph.

    A symbol's trainable weights are one flat row of ``flat`` (``[S, P]``; layer tensors are
    reshaped slices of it), and its BatchNorm statistics one row of ``moving``: Adam, the masked
    updates and the best-epoch snapshot are then a handful of ops on whole rows instead of a
    dozen per layer tensor. The graph runs hundreds of tiny ops per step, so op count is time
    (~8 us each): 10 % of a step here. The arithmetic per element is unchanged.
    """

    def __init__(self, n_feat: int, params: Any, known_axes: bool = True) -> None:
        """``params``: an NNRegressor. ``known_axes`` False: trace without
        :func:`_known_broadcast_axes` (the tests' reference graph)."""
        from sentinel.ml._tf import tf  # lazy: TensorFlow costs seconds to import

        self.tf = tf
        self.known_axes = known_axes
        self.lock = threading.Lock()  # one fit at a time per graph (API thread vs a run)
        self.rates = [float(r) for r in params.dropout]
        self.lr = float(params.learning_rate)
        self.sizes = [n_feat, *[int(u) for u in params.hidden_units]]

        def var(shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
            return tf.Variable(np.zeros((1, *shape), dtype), shape=tf.TensorShape([None, *shape]))

        shapes: list[tuple[int, ...]] = []
        for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            shapes += [(fi, fo), (fo,), (fo,), (fo,)]  # W, b, gamma, beta
        shapes += [(self.sizes[-1], 1), (1,)]
        self.shapes = shapes
        self.mov_shapes = [(fo,) for fo in self.sizes[1:] for _ in (0, 1)]  # mean, var
        n_p = sum(math.prod(sh) for sh in shapes)
        n_m = sum(math.prod(sh) for sh in self.mov_shapes)
        self.flat, self.m, self.v = var((n_p,)), var((n_p,)), var((n_p,))
        self.moving = var((n_m,))
        self.best, self.best_moving = var((n_p,)), var((n_m,))
        self.steps, self.best_loss = var(()), var(())
        self.best_epoch, self.wait = var((), np.int32), var((), np.int32)
        self.frozen = var((), bool)
        self.patience = tf.Variable(0, dtype=tf.int32)
        f32, i32 = tf.float32, tf.int32
        spec = [
            tf.TensorSpec([None, None, n_feat], f32), tf.TensorSpec([None, None], f32),
            tf.TensorSpec([None, None, None], i32), tf.TensorSpec([None, None, None], f32),
            tf.TensorSpec([None, None, n_feat], f32), tf.TensorSpec([None, None], f32),
            tf.TensorSpec([None, None], f32), tf.TensorSpec([], i32), tf.TensorSpec([], i32),
        ]  # fmt: skip
        self.epoch_fn = tf.function(self._traced_epoch, input_signature=spec, autograph=False)
        # one graph call instead of many eager gather + assign pairs (60 ms -> ~2 ms a shrink)
        self.keep_fn = tf.function(
            self._keep, input_signature=[tf.TensorSpec([None], i32)], autograph=False
        )
        # called through their concrete functions: the polymorphic call re-binds and type-checks
        # its arguments against the signature on every epoch (~13 % of the demo's network CPU,
        # measured on its ten passes). Same graphs, same bits. Traced lazily.
        self._epoch_cf: Any = None
        self._keep_cf: Any = None

    def epoch(self, *args: Any) -> Any:
        """One epoch (see :meth:`_epoch`) through the traced concrete function."""
        if self._epoch_cf is None:
            self._epoch_cf = self.epoch_fn.get_concrete_function()
        return self._epoch_cf(*args)

    @property
    def state(self) -> list[Any]:
        """Every per-symbol variable (leading dimension: the stack)."""
        return [self.flat, self.moving, self.m, self.v, self.best, self.best_moving, self.steps,
                self.best_loss, self.best_epoch, self.wait, self.frozen]  # fmt: skip

    @staticmethod
    def _split(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
        """Rows ``[S, P]`` -> per-tensor arrays ``[S, *shape]`` (numpy)."""
        out, o = [], 0
        for sh in shapes:
            n = math.prod(sh)
            out.append(flat[:, o : o + n].reshape(len(flat), *sh))
            o += n
        return out

    def _parts(self, flat: Any, shapes: Sequence[tuple[int, ...]]) -> list[Any]:
        """Rows ``[S, P]`` -> per-tensor views ``[S, *shape]`` (graph)."""
        tf, out, o = self.tf, [], 0
        for sh in shapes:
            n = math.prod(sh)
            out.append(tf.reshape(flat[:, o : o + n], [-1, *sh]))
            o += n
        return out

    def reset(self, n_sym: int, seed: int, patience: int, start: Start | None = None) -> None:
        """Fresh networks for ``n_sym`` symbols: Glorot weights drawn from ``seed`` as if alone;
        the rows that ``start`` marks begin from its weights instead (a warm refit)."""
        rng = np.random.default_rng(seed)
        init: list[np.ndarray] = []
        for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            init += [_glorot(rng, n_sym, fi, fo), np.zeros((n_sym, fo), np.float32)]
            init += [np.ones((n_sym, fo), np.float32), np.zeros((n_sym, fo), np.float32)]
        init += [_glorot(rng, n_sym, self.sizes[-1], 1), np.zeros((n_sym, 1), np.float32)]
        moving = []
        for fo in self.sizes[1:]:
            moving += [np.zeros((n_sym, fo), np.float32), np.ones((n_sym, fo), np.float32)]
        flat = np.concatenate([a.reshape(n_sym, -1) for a in init], axis=1)
        mov = np.concatenate(moving, axis=1)
        if start is not None:
            flat[start.rows], mov[start.rows] = start.flat, start.moving
        self.flat.assign(flat)
        self.best.assign(flat)
        self.moving.assign(mov)
        self.best_moving.assign(mov)
        self.m.assign(np.zeros_like(flat))
        self.v.assign(np.zeros_like(flat))
        self.steps.assign(np.zeros(n_sym, np.float32))
        self.best_loss.assign(np.full(n_sym, np.inf, np.float32))
        self.best_epoch.assign(np.zeros(n_sym, np.int32))
        self.wait.assign(np.zeros(n_sym, np.int32))
        self.frozen.assign(np.zeros(n_sym, bool))
        self.patience.assign(int(patience))

    def warm_up(self) -> None:
        """Trace the epoch and shrink graphs once on a two-symbol dummy stack."""
        tf, n_f = self.tf, self.sizes[0]
        self.reset(2, 0, 1)
        z3, z2 = tf.zeros([2, 2, n_f]), tf.zeros([2, 2])
        idx = tf.zeros([1, 2, 2], tf.int32)
        self.epoch(z3, z2, idx, tf.ones([1, 2, 2]), z3, z2, tf.ones([2, 2]),
                   tf.constant(0, tf.int32), tf.constant(1, tf.int32))  # fmt: skip
        self.keep(np.array([0]))

    def keep(self, rows: np.ndarray) -> None:
        """Shrink the stack to ``rows`` (finished symbols leave; the others are unchanged)."""
        if self._keep_cf is None:
            self._keep_cf = self.keep_fn.get_concrete_function()
        self._keep_cf(self.tf.constant(rows, self.tf.int32))

    def _keep(self, idx: Any) -> None:
        for v in self.state:
            v.assign(self.tf.gather(v.read_value(), idx))

    def weights(self, fixed: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(trainable, moving) per layer, stacked: the best epoch's, or the last if ``fixed``."""
        flat, mov = (self.flat, self.moving) if fixed else (self.best, self.best_moving)
        return self._split(flat.numpy(), self.shapes), self._split(mov.numpy(), self.mov_shapes)

    # -- graph code -------------------------------------------------------------------------
    def _forward(self, p: list[Any], x: Any, mask: Any | None, seed: Any | None) -> Any:
        """Training mode when ``mask`` is given (batch statistics + dropout), else inference.

        ``p``: the layer tensors (:meth:`_parts` of ``flat``).
        """
        tf = self.tf
        h = x
        n_hidden = len(self.rates)
        batch_stats = []
        moving = None if mask is not None else self._parts(self.moving, self.mov_shapes)
        for i in range(n_hidden):
            w, b, g, be = p[4 * i : 4 * i + 4]
            h = tf.nn.relu(tf.matmul(h, w) + b[:, None, :])
            if moving is not None:
                mean, var = moving[2 * i][:, None, :], moving[2 * i + 1][:, None, :]
            else:
                m = mask[:, :, None]
                cnt = tf.maximum(tf.reduce_sum(m, axis=1, keepdims=True), 1.0)
                mean = tf.reduce_sum(h * m, axis=1, keepdims=True) / cnt
                var = tf.reduce_sum(tf.square(h - mean) * m, axis=1, keepdims=True) / cnt
                batch_stats.append((mean[:, 0, :], var[:, 0, :]))
            h = (h - mean) * tf.math.rsqrt(var + BN_EPSILON) * g[:, None, :] + be[:, None, :]
            if mask is not None and self.rates[i] > 0.0:
                # one [1, B, units] draw broadcast over symbols: a symbol's mask is independent
                # of how many symbols share the stack and of its position in it
                shape = tf.concat([[1], tf.shape(h)[1:]], axis=0)
                keep = tf.random.stateless_uniform(shape, seed=seed + i) >= self.rates[i]
                h = h * tf.cast(keep, h.dtype) / (1.0 - self.rates[i])
        wo, bo = p[-2], p[-1]
        out = tf.matmul(h, wo)[:, :, 0] + bo
        return out, batch_stats

    def _step(self, xb: Any, yb: Any, mb: Any, seed: Any) -> None:
        tf = self.tf
        active = tf.logical_and(tf.reduce_sum(mb, axis=1) > 0, tf.logical_not(self.frozen))
        with tf.GradientTape() as tape:
            parts = self._parts(self.flat, self.shapes)
            out, stats = self._forward(parts, xb, mb, seed)
            cnt = tf.maximum(tf.reduce_sum(mb, axis=1), 1.0)
            loss = tf.reduce_sum(tf.reduce_sum(tf.square(out - yb) * mb, axis=1) / cnt)
        grads = tape.gradient(loss, parts)
        n_s = tf.shape(mb)[0]
        g = tf.concat([tf.reshape(gr, [n_s, -1]) for gr in grads], axis=1)
        self.steps.assign_add(tf.cast(active, tf.float32))
        t = tf.maximum(self.steps, 1.0)
        alpha = (self.lr * tf.sqrt(1.0 - _ADAM_B2**t) / (1.0 - _ADAM_B1**t))[:, None]
        # masked updates as selects (one op on [S, P] rows, not four): for finite values the
        # same bits as the arithmetic mask a * new + (1 - a) * old with a in {0, 1}
        a = active[:, None]
        m, v = self.m, self.v
        m_new = _ADAM_B1 * m + (1.0 - _ADAM_B1) * g
        v_new = _ADAM_B2 * v + (1.0 - _ADAM_B2) * tf.square(g)
        m.assign(tf.where(a, m_new, m))
        v.assign(tf.where(a, v_new, v))
        self.flat.assign_sub(tf.where(a, alpha * m / (tf.sqrt(v) + _ADAM_EPS), 0.0))
        stat = tf.concat([t for mean_var in stats for t in mean_var], axis=1)
        mv = self.moving
        mv.assign(tf.where(a, mv + (1.0 - _BN_MOMENTUM) * (stat - mv), mv))

    def _traced_epoch(self, *args: Any) -> Any:
        with _known_broadcast_axes() if self.known_axes else contextlib.nullcontext():
            return self._epoch(*args)

    def _epoch(self, x_tr, y_tr, idx, mask, x_va, y_va, m_va, seed, epoch):  # noqa: ANN001
        tf = self.tf

        def step(t: Any) -> tuple[Any]:
            xb = tf.gather(x_tr, idx[t], batch_dims=1)
            yb = tf.gather(y_tr, idx[t], batch_dims=1)
            self._step(xb, yb, mask[t], tf.stack([seed, t * 8]))
            return (t + 1,)

        # the steps as an explicit while loop (what AutoGraph made of `for t in tf.range(...)`):
        # the graphs are traced with autograph=False, whose source conversion was ~60 % of the
        # one-time tracing (~1 s of a run's start); the step's ops and their order are the same
        n_steps = tf.shape(idx)[0]
        tf.while_loop(lambda t: t < n_steps, step, (tf.constant(0, tf.int32),))
        out, _ = self._forward(self._parts(self.flat, self.shapes), x_va, None, None)
        cnt = tf.maximum(tf.reduce_sum(m_va, axis=1), 1.0)
        val = tf.reduce_sum(tf.square(out - y_va) * m_va, axis=1) / cnt
        improved = tf.logical_and(val < self.best_loss, tf.logical_not(self.frozen))
        imp = improved[:, None]
        self.best.assign(tf.where(imp, self.flat, self.best))
        self.best_moving.assign(tf.where(imp, self.moving, self.best_moving))
        self.best_loss.assign(tf.where(improved, val, self.best_loss))
        self.best_epoch.assign(tf.where(improved, epoch, self.best_epoch))
        live = tf.logical_not(self.frozen)
        self.wait.assign(tf.where(improved, 0, tf.where(live, self.wait + 1, self.wait)))
        self.frozen.assign(tf.logical_or(self.frozen, self.wait >= self.patience))
        return val


def _batches(seed: int, epoch: int, n_tr: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-symbol shuffled mini-batch indices ``[steps, S, B]`` and their masks.

    A symbol's permutation depends only on ``(seed, epoch, its row count)``, never on the other
    symbols of the stack (see "Random streams" above).
    """
    steps = int(math.ceil(n_tr.max() / batch))
    idx = np.zeros((len(n_tr), steps * batch), np.int32)
    mask = np.zeros((len(n_tr), steps * batch), np.float32)
    perms: dict[int, np.ndarray] = {}
    for s, n in enumerate(int(v) for v in n_tr):
        if n not in perms:
            perms[n] = np.random.default_rng([seed, epoch]).permutation(n)
        idx[s, :n] = perms[n]
        mask[s, :n] = 1.0
    shape = (len(n_tr), steps, batch)
    return idx.reshape(shape).transpose(1, 0, 2).copy(), mask.reshape(shape).transpose(1, 0, 2)


#: A stack shrinks once this share of it has finished (frozen symbols cost a full step each).
_COMPACT_SHARE = 0.1
_TRAINERS: dict[tuple[Any, ...], _Trainer] = {}


_BUILD = threading.Lock()  # one build per architecture, whichever thread asks first


def _trainer(n_feat: int, params: Any) -> _Trainer:  # params: an NNRegressor
    """The process's graph for this architecture (built and traced once, then reused)."""
    key = (n_feat, tuple(params.hidden_units), tuple(params.dropout), params.learning_rate)
    with _BUILD:
        if key not in _TRAINERS:
            _TRAINERS[key] = _Trainer(n_feat, params)
        return _TRAINERS[key]


def _run_epochs(
    tr: _Trainer,
    st: _Stack,
    goal: np.ndarray,
    fixed: bool,
    seed: int,
    patience: int,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
    start: Start | None = None,
) -> dict[int, tuple[list[np.ndarray], list[np.ndarray], float, int, int]]:
    """Train the stack; per symbol (index into ``st``): weights, moving stats, loss, epochs.

    A symbol that has finished (stopped early, or reached its fixed epoch count) leaves the stack
    once ``_COMPACT_SHARE`` of it has, keeping its weights: its remaining steps would be masked
    no-ops. What the others compute is unchanged (see "Random streams"), so only time is saved.
    """
    tf = tr.tf
    n = len(goal)
    tr.reset(n, seed, patience, start)
    rows = np.arange(n)  # stack position -> symbol
    n_tr = st.n_tr.copy()
    x_tr, y_tr, x_va, y_va, m_va = st.x_tr, st.y_tr, st.x_va, st.y_va, st.m_va
    n_epochs = np.zeros(n, np.int64)
    out: dict[int, tuple[list[np.ndarray], list[np.ndarray], float, int, int]] = {}

    def release(pos: np.ndarray) -> None:
        par, mov = tr.weights(fixed)
        loss = tr.best_loss.numpy()
        best_epoch = goal[rows] if fixed else tr.best_epoch.numpy()
        for k in pos:
            s = int(rows[k])
            out[s] = (
                [a[k] for a in par], [a[k] for a in mov],
                float("nan") if fixed else float(loss[k]), int(best_epoch[k]), int(n_epochs[s]),
            )  # fmt: skip

    last = int(goal.max())
    tensors = None
    for epoch in range(1, last + 1):
        if fixed:
            tr.frozen.assign(epoch > goal[rows])
        frozen = tr.frozen.numpy()
        done = np.flatnonzero(frozen)
        if len(done) and len(done) >= max(1, _COMPACT_SHARE * len(rows)):
            release(done)
            keep = np.flatnonzero(~frozen)
            tr.keep(keep)
            rows, n_tr = rows[keep], n_tr[keep]
            ntr, nva = int(n_tr.max()), max(1, int(m_va[keep].sum(axis=1).max()))
            x_tr, y_tr = x_tr[keep, :ntr], y_tr[keep, :ntr]
            x_va, y_va, m_va = x_va[keep, :nva], y_va[keep, :nva], m_va[keep, :nva]
            tensors, frozen = None, frozen[keep]
        if tensors is None:
            tensors = [tf.constant(a) for a in (x_tr, y_tr, x_va, y_va, m_va)]
        idx, mask = _batches(seed, epoch, n_tr, batch_size)
        n_epochs[rows[~frozen]] = epoch
        xt, yt, xv, yv, mv = tensors
        tr.epoch(
            xt, yt, tf.constant(idx), tf.constant(mask), xv, yv, mv,
            tf.constant(seed * 100_003 + epoch, tf.int32), tf.constant(epoch, tf.int32),
        )  # fmt: skip
        stopped = not fixed and bool(tr.frozen.numpy().all())
        if progress:
            progress(last if stopped else epoch, last)
        if stopped:
            break
    release(np.arange(len(rows)))
    return out
