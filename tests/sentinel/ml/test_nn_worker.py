"""The network-training process: the same networks as in process, errors that name the process,
and a child that cannot outlive the process that started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest

from sentinel.ml import nn_worker
from sentinel.ml.batched import fit_nn_batched
from sentinel.ml.errors import MLError
from sentinel.ml.models import NNRegressor
from tests.sentinel.ml.conftest import N_FEATURES, make_data

ROOT = Path(__file__).resolve().parents[3]


def _arrays(model: NNRegressor) -> list[np.ndarray]:
    w = model.weights_
    return [a for layer in w.hidden for a in astuple(layer)] + [w.out_kernel, w.out_bias]


def _same_networks(a, b) -> None:
    for ra, rb in zip(a, b, strict=True):
        assert ra.error is None and rb.error is None
        ma, mb = ra.model, rb.model
        assert (ma.best_epoch_, ma.n_epochs_) == (mb.best_epoch_, mb.n_epochs_)
        assert ma.best_val_loss_ == mb.best_val_loss_ or (
            np.isnan(ma.best_val_loss_) and np.isnan(mb.best_val_loss_)
        )
        for x, y in zip(_arrays(ma), _arrays(mb), strict=True):
            np.testing.assert_array_equal(x, y)  # bit for bit, not approximately


def test_the_training_process_fits_the_same_networks_bit_for_bit():
    # row counts differ (padding, steps per epoch, symbols leaving the stack early)
    sets = [make_data(n, seed=i)[:2] for i, n in enumerate((60, 90, 130))]
    params = NNRegressor(max_epochs=8, patience=2)
    worker = nn_worker.start(N_FEATURES, params)
    here: list[tuple[int, int]] = []
    there: list[tuple[int, int]] = []
    local = fit_nn_batched(sets, params, seed=3, progress=lambda e, n: here.append((e, n)))
    with nn_worker.using(worker):
        assert nn_worker.active() is worker
        remote = fit_nn_batched(sets, params, seed=3, progress=lambda e, n: there.append((e, n)))
    assert nn_worker.active() is None  # scoped to the block
    _same_networks(local, remote)
    assert here == there and here  # the same progress, reported in this process
    # the refit's path: fixed epoch counts, no early-stopping slice
    local = fit_nn_batched(sets, params, seed=3, epochs=[2, 5, 3])
    with nn_worker.using(worker):
        remote = fit_nn_batched(sets, params, seed=3, epochs=[2, 5, 3])
    _same_networks(local, remote)


def test_an_error_in_the_child_is_raised_here_and_the_child_serves_on():
    params = NNRegressor(max_epochs=2, patience=1)
    worker = nn_worker.start(N_FEATURES, params)
    bad = (np.zeros((1, 4, 3), np.float32),) + tuple(
        np.zeros(s, np.float32) for s in ((1, 4), (1,), (1, 2, 3), (1, 2), (1, 2))
    )  # 3 features where the graph takes 20
    with pytest.raises(MLError, match="network training failed in the training process"):
        worker.run_epochs(N_FEATURES, params, bad, np.array([2]), False, 0, 1, None)
    sets = [make_data(60, seed=0)[:2]]
    with nn_worker.using(worker):
        assert fit_nn_batched(sets, params)[0].model is not None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_training_process_gets_the_allocator_settings_that_bound_its_memory(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    worker = nn_worker.NNWorker()
    try:
        env = Path(f"/proc/{worker.proc.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=1" in env and b"MALLOC_MMAP_THRESHOLD_=4194304" in env
    finally:
        worker.close()


def test_a_dead_training_process_is_an_error_naming_it():
    worker = nn_worker.NNWorker()
    try:
        worker.proc.kill()
        worker.proc.wait(timeout=30)
        assert not worker.alive
        sets = [make_data(60, seed=0)[:2]]
        with nn_worker.using(worker), pytest.raises(MLError, match=f"pid {worker.proc.pid}"):
            fit_nn_batched(sets, NNRegressor(max_epochs=2, patience=1))
    finally:
        worker.close()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # exited, waiting to be reaped by its new parent


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_child_exits_when_its_parent_dies_without_closing_it():
    code = (
        "import os; from sentinel.ml import nn_worker; w = nn_worker.spawn(); "
        "print(w.proc.pid, flush=True); os._exit(0)"  # no atexit, no close: as if killed
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 120  # it finishes importing TensorFlow, then reads EOF
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(pid)


def test_starting_the_child_imports_neither_pandas_nor_tensorflow_first():
    # the child's first import is this module; TensorFlow's import comes next and every
    # import before it delays the run's first retrain
    code = (
        "import sys, sentinel.ml.nn_worker; "
        "print(sorted(m for m in ('pandas', 'tensorflow', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120, env={**os.environ})  # fmt: skip
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_process_trains_in_itself_not_through_the_parents_pipes():
    worker = nn_worker.spawn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the inherited worker object must not be used
        with nn_worker.using(worker):
            ok = nn_worker.active() is None and not worker.alive
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    with nn_worker.using(worker):
        assert nn_worker.active() is worker and worker.alive  # the parent's is untouched
