"""Engine test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def quick_dask_refusal(monkeypatch):
    """Dask clients give up on an unreachable scheduler after 0.5 s instead of the product's
    5 s: the refusal and its message are the same, the suite does not idle waiting for it."""
    distributed = pytest.importorskip("distributed")
    client = distributed.Client

    def impatient(*args, **kw):
        return client(*args, **{**kw, "timeout": "0.5s"})

    monkeypatch.setattr(distributed, "Client", impatient)
