"""Conversions between the date forms users pass (date, datetime, ISO text, Unix seconds).

Daily data is keyed by calendar date. Timestamps such as ``predicted_at`` and
``calculated_at`` are Unix seconds at the *end* of the day they belong to (23:59:59 UTC),
so "as of the end of day D" and "known by D" are the same comparison.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import numpy as np
import pandas as pd

DateLike = date | datetime | str | int | float | np.datetime64 | pd.Timestamp


def to_date(value: DateLike) -> date:
    """Normalise any accepted date form to a ``datetime.date`` (Unix seconds are read as UTC)."""
    if isinstance(value, bool):
        raise TypeError(f"not a date: {value!r}")
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float | np.integer | np.floating):
        return datetime.fromtimestamp(float(value), tz=UTC).date()
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError as exc:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from exc
    raise TypeError(f"not a date: {value!r}")


def require_date(value: object, field: str = "date") -> date:
    """``value`` as a ``datetime.date`` (a datetime or Timestamp gives its day); text and numbers
    are refused: inside the project a day is a ``date``, parsed once at the edge (CLI, API, config).
    """
    if isinstance(value, datetime):  # pd.Timestamp is a datetime
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(
        f"{field}: a datetime.date, not {type(value).__name__} {value!r} "
        "(parse text at the edge: the CLI, the API or the config)"
    )


def end_of_day_ts(value: DateLike) -> float:
    """Unix seconds of 23:59:59 UTC on the given day: the moment a daily value is known."""
    d = to_date(value)
    return datetime.combine(d, time(23, 59, 59), tzinfo=UTC).timestamp()


def as_of_ts(value: DateLike) -> float:
    """An as-of bound in Unix seconds: a plain date means the end of that day."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime | pd.Timestamp):
        v = value if value.tzinfo else value.replace(tzinfo=UTC)
        return v.timestamp()
    return end_of_day_ts(value)
