"""Shared fixtures of the store tests."""

from __future__ import annotations

import pytest

from sentinel.db import Store


@pytest.fixture
def pair(demo_store: Store) -> tuple[Store, Store]:
    """The demo store read through SQL, and the same store with its price cache preloaded."""
    cached = Store(engine=demo_store.engine)
    cached.market.preload()
    return demo_store, cached
