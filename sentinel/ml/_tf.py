"""Lazy TensorFlow/Keras access: quiet logs, thread settings (imported only when needed)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["configure_threads", "keras", "tf"]


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
