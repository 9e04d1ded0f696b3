"""Shared CLI plumbing: the console, the store the options name, error formatting."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliState:
    debug: bool = False
    database_url: str | None = None


state = CliState()


def open_cli_store():
    """The store named by ``--db`` or ``SENTINEL_DATABASE_URL`` (settings default)."""
    from sentinel.db import Store  # lazy: pandas and SQLAlchemy (~1 s; not for --help)
    from sentinel.settings import get_settings

    url = state.database_url or os.environ.get("SENTINEL_DATABASE_URL")
    return Store(url or get_settings().database_url)
