"""The as-of guard shared by the bounded repositories (market data and signals).

A repository made for ``day`` defaults its reads to that day and raises
:class:`~sentinel.errors.LookAheadError` (naming the table, the symbol, the bound and the date asked
for) on a read of anything later; made for ``None`` it is unbounded.
"""

from __future__ import annotations

from datetime import date

from sentinel.db.database import Database
from sentinel.errors import LookAheadError
from sentinel.timeutil import as_of_ts, end_of_day_ts, require_date


class Bounded:
    """Reads of one database bounded at ``day`` (None: unbounded)."""

    def __init__(self, db: Database, day: date | None):
        self.db = db
        self._day = day

    @property
    def day(self) -> date | None:
        """The day every read is bounded by, or None when unbounded."""
        return self._day

    def _bound(self, table: str, symbol: str | None, requested: date | None) -> date | None:
        """The effective end date of a read, raising on a read past the simulation date."""
        if requested is None:
            return self._day
        d = require_date(requested, f"{table} read")
        if self._day is not None and d > self._day:
            raise LookAheadError(table, symbol, self._day, d)
        return d

    def _bound_ts(
        self, table: str, symbol: str | None, requested: date | float | None
    ) -> float | None:
        """As :meth:`_bound` for timestamp-keyed tables: a date means its end, a number is Unix
        seconds (the notes' ``get_score(as_of_date)`` takes both); text is refused."""
        limit = None if self._day is None else end_of_day_ts(self._day)
        if requested is None:
            return limit
        if not isinstance(requested, date | int | float) or isinstance(requested, bool):
            require_date(requested, f"{table} read")  # raises the one clear TypeError
        ts = as_of_ts(requested)
        if limit is not None and ts > limit:
            raise LookAheadError(table, symbol, self._day, requested)  # type: ignore[arg-type]
        return ts
