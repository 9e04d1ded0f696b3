"""One-entry caches of the ``/api/ml/models`` body and the status figures, keyed by fingerprints.

The list is polled by the UI and is the heaviest read (500 symbols: ~7 ms of ORM and JSON work per
request, which caps a 2-core box at ~150 requests/s). It only changes when a model record does, and
every record write sets ``trained_at``; one aggregate query tells whether the cached body is still
right, so readers in other processes (``sentinel ml train``) invalidate it too.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from sentinel.db import Store


def records_fingerprint(store: Store) -> tuple[Any, ...]:
    """Count, latest ``trained_at`` and sample total of the model records (one indexed scan)."""
    return store.records.model_records_fingerprint()


def runs_fingerprint(store: Store) -> tuple[Any, ...]:
    """Count and newest id of the stored backtest runs (insert-only: that is every change)."""
    return store.records.backtest_runs_fingerprint()


def status_fingerprint(store: Store) -> tuple[Any, ...]:
    """What ``ml_status`` depends on besides settings: the records and the sample count."""
    return (*store.records.model_records_fingerprint(), store.db.count("training_samples"))


class ValueCache:
    """The value computed for the latest key (thread-safe, one entry)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key == self._key:
                return self._value
        value = compute()
        with self._lock:
            self._key, self._value = key, value
        return value


class RenderedCache:
    """Rendered bytes and their ETag for the latest fingerprint (thread-safe, one entry)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._body: bytes = b""
        self._etag: str = ""
        self._lock = threading.Lock()

    def peek(self, key: tuple[Any, ...]) -> bytes | None:
        """The cached body for ``key``, or None (nothing is rendered)."""
        with self._lock:
            return self._body if key == self._key else None

    def get(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> tuple[bytes, str]:
        with self._lock:
            if key == self._key:
                return self._body, self._etag
        body = render()  # outside the lock: a slow render does not block cached readers
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        with self._lock:
            self._key, self._body, self._etag = key, body, etag
        return body, etag
