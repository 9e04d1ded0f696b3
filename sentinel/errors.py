"""One exception hierarchy; every message names the thing at fault and, where possible, the fix.

The CLI turns any :class:`SentinelError` into one line and a non-zero exit code.
"""

from __future__ import annotations

from datetime import date


class SentinelError(Exception):
    """Base of every error sentinel raises on purpose."""


class LookAheadError(SentinelError):
    """A read asked for data after the simulation date: a leak made loud instead of silent."""

    def __init__(self, table: str, symbol: str | None, simulation_date: date, requested: object):
        self.table = table
        self.symbol = symbol
        self.simulation_date = simulation_date
        self.requested = requested
        what = f"{table}" + (f" for {symbol}" if symbol else "")
        super().__init__(
            f"look-ahead: read of {what} as of {requested} but the simulation date is "
            f"{simulation_date}; only data on or before {simulation_date} may be read"
        )


class ConfigError(SentinelError):
    """A configuration file or value is invalid."""


class DataImportError(SentinelError):
    """An input file breaks a validation rule; names the file, the line and the rule."""

    def __init__(self, path: str, line: int | None, rule: str, detail: str = ""):
        self.path = path
        self.line = line
        self.rule = rule
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {rule}" + (f" ({detail})" if detail else ""))


class NotFoundError(SentinelError):
    """A symbol, run or record that does not exist."""
