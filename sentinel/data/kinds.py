"""The kinds of file ``sentinel data import`` and a run config's ``data.imports`` accept.

A module of its own so the run config can validate ``kind:`` without importing pandas (config
errors must appear before the heavy imports).
"""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "prices",
    "benchmark",
    "sectors",
    "sentiment",
    "actions",
    "listings",
    "sector_history",
    "membership",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
