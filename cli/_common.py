"""Shared CLI plumbing: the console, the store the options name, error formatting."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliState:
    debug: bool = False
    database_url: str | None = None
    create: bool = False


state = CliState()


def open_cli_store():
    """The store named by ``--db`` or ``SENTINEL_DATABASE_URL`` (settings default)."""
    from sentinel.db import Store  # lazy: pandas and SQLAlchemy (~1 s; not for --help)
    from sentinel.settings import get_settings

    url = state.database_url or os.environ.get("SENTINEL_DATABASE_URL")
    return Store(url or get_settings().database_url)


def require_existing_store(url: str) -> None:
    """Refuse ``--db sqlite:///missing.db`` (a typo would silently create an empty store).

    ``--create`` allows it; other databases (PostgreSQL) must exist anyway.
    """
    from sentinel.errors import ConfigError  # lazy: keeps --help fast

    if not url.startswith("sqlite") or "///" not in url:
        return
    path = url.split("///", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    if not Path(path).expanduser().exists():
        raise ConfigError(
            f"--db {url}: no such database file; check the path, or add --create to make a new "
            "empty store there"
        )


# -- progress: a bar in a terminal, a line every few percent in a log -------------------------
#: In a non-terminal (a redirected log) a task prints a line each time it passes this fraction.
LOG_STEP = 0.05


class CountingProgress(Progress):
    """Rich progress with counts; when the console is not a terminal the bars are off and each
    task prints ``description: i/n (p%)`` every :data:`LOG_STEP` of its total (and at the end),
    so a redirected log shows progress as it goes instead of one line at the end."""

    def __init__(self, *columns: Any, console: Console = console, **kwargs: Any):
        self.logging = not console.is_terminal
        super().__init__(
            *(columns or default_columns()), console=console, disable=self.logging, **kwargs
        )
        self._named: dict[TaskID, str] = {}  # the last description logged (tasks without total)
        self._step: dict[TaskID, int] = {}  # the last LOG_STEP logged

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        if self.logging:
            self._log(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        if self.logging:
            self._log(task_id)

    def _log(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        if not task.total:  # no count yet: log each new step's name
            if self._named.get(task_id) != task.description:
                self._named[task_id] = task.description
                self.console.print(task.description, soft_wrap=True, markup=False)
            return
        done = task.completed >= task.total
        step = _DONE if done else int(task.completed / task.total / LOG_STEP + 1e-9)
        if task.completed <= 0 or step <= self._step.get(task_id, 0):
            return
        self._step[task_id] = step
        self.console.print(
            f"{task.description}: {int(task.completed):,}/{int(task.total):,} "
            f"({100 * task.completed / task.total:.0f}%)",
            soft_wrap=True, markup=False,
        )  # fmt: skip


_DONE = 1 << 30  # the step of a finished task: logged once


class CountColumn(MofNCompleteColumn):
    """``i/n`` once the total is known; nothing (not ``0/?``) before."""

    def render(self, task: Any) -> Any:
        return Text("") if task.total is None else super().render(task)


def default_columns() -> tuple[Any, ...]:
    return (
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), CountColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip


@contextmanager
def working(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner with a message in a terminal; each new message as a line in a log."""
    if console.is_terminal:
        with console.status(message) as spinner:
            yield lambda msg: spinner.update(msg)
        return
    console.print(message, markup=False, soft_wrap=True)
    yield lambda msg: console.print(msg, markup=False, soft_wrap=True)


# -- tables by default, JSON for machines -----------------------------------------------------
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")
]


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no colours, one document)."""
    print(json.dumps(data, indent=2, default=str))


def fmt_value(v: Any) -> str:
    """A table cell: ``-`` for missing, 4 significant digits for a float, ``1,234`` for an int."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.4g}"
    return str(v)


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    """A two-column table; nested mappings become ``parent.child`` rows."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in _flat(rows):
        table.add_row(escape(key), escape(fmt_value(value)))
    return table


def _flat(rows: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in rows.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
