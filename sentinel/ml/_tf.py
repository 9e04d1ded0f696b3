"""Lazy TensorFlow/Keras access: quiet logs, thread settings (imported only when needed).

``keras`` is resolved on first use (``from sentinel.ml._tf import keras``), not with ``tf``: the
batched trainer needs TensorFlow alone, and the network-training process
(:mod:`sentinel.ml.nn_worker`) keeps Keras out entirely (see there).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow as tf  # noqa: E402

__all__ = ["configure_threads", "keras", "tf"]  # noqa: F822 - keras: see __getattr__


def __getattr__(name: str) -> Any:
    if name == "keras":
        import keras

        return keras
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure_threads(intra_op: int = 1, inter_op: int = 1) -> bool:
    """Set TF's thread pools; returns False if TF already started (settings are then fixed).

    On the 2-core target one intra-op thread was measured faster for these tiny batched
    matmuls: thread hand-offs cost more than the arithmetic.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        return False
    return True
