"""Walk-forward training fanned out over Dask (``ml.train_executor: {kind: dask}``).

Why: one retrain of thousands of symbols is one batched TensorFlow pass on one machine; cut into
one chunk per worker, the chunks train at once on the sweep's cluster. The domain
(:func:`sentinel.ml.training.train_as_of`) cuts the chunks and merges the results; this module
only owns the connection, so ``sentinel/`` never imports Dask.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from engine.config import TrainExecutorConfig


class DaskChunkMapper:
    """A :class:`~sentinel.ml.training.ChunkMapper` over a Dask client.

    Connects on the first retrain (a run that never retrains starts no cluster), like the
    sweep's :func:`engine.sweep_run.connect_dask`: to ``address``, else to a new local cluster
    of ``workers`` processes (one thread each), which is closed with the mapper (or at exit).
    """

    def __init__(self, cfg: TrainExecutorConfig):
        self.cfg = cfg
        self.workers = int(cfg.workers)
        self._client: Any = None
        self._finalizer: weakref.finalize | None = None

    def _connect(self) -> Any:
        if self._client is None:
            client, cluster = _connect(self.cfg.address, self.cfg.workers)
            self._client = client
            self._finalizer = weakref.finalize(self, _close, client, cluster)
            if self.cfg.address:  # a remote cluster: one chunk per worker it has now
                n = len(client.scheduler_info().get("workers", {}))
                self.workers = max(1, n)
        return self._client

    def __call__(self, fn: Callable[[Any], Any], chunks: list[Any]) -> list[Any]:
        client = self._connect()
        futures = client.map(fn, chunks, pure=False)
        return client.gather(futures)

    def close(self) -> None:
        """Close the client (and a local cluster it started); the next call reconnects."""
        if self._finalizer is not None:
            self._finalizer()
        self._client = self._finalizer = None


def _connect(address: str | None, workers: int) -> tuple[Any, Any]:
    """(client, local cluster or None): the sweeps' connection, errors naming this key."""
    from engine.sweep_run import connect_dask

    return connect_dask(address, workers, key="ml.train_executor.address")


def _close(client: Any, cluster: Any) -> None:
    client.close()
    if cluster is not None:
        cluster.close()


def train_mapper(cfg: TrainExecutorConfig) -> DaskChunkMapper | None:
    """The run's chunk mapper: None for ``kind: local`` (the in-process batched pass)."""
    return DaskChunkMapper(cfg) if cfg.kind == "dask" else None
