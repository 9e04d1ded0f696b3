"""The exchange calendar of a run (``exchange_calendars``; XNYS by default).

Schedules, live mode's due days and holiday handling come from the exchange's published
sessions, not from the days that happen to have bars: a holiday Friday is known in advance, so
live and backtest rebalance on the same days, and a session without bars is a data gap to report.
Days are :class:`datetime.date` throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from sentinel.errors import ConfigError

if TYPE_CHECKING:
    from sentinel.db.cache import PriceCache

DEFAULT_CALENDAR = "XNYS"
#: Calendars are built from this year on (exchange_calendars defaults to ~20 years back only).
FIRST_YEAR = 1990


def calendar_names() -> list[str]:
    """Every calendar name exchange_calendars knows (codes like XNYS and aliases like NYSE)."""
    import exchange_calendars as xc  # lazy: ~0.5 s import, only runs need it

    return sorted(xc.get_calendar_names(include_aliases=True))


def check_calendar_name(name: str) -> str:
    """``name`` if exchange_calendars knows it, else a ValueError listing a few valid names."""
    if name not in calendar_names():
        raise ValueError(
            f"unknown exchange calendar {name!r}; e.g. XNYS (New York), XLON, XTKS, XETR "
            "(any exchange_calendars name)"
        )
    return name


@lru_cache(maxsize=16)
def _calendar(name: str, first_year: int, last_year: int):
    import exchange_calendars as xc

    try:
        return xc.get_calendar(name, start=f"{first_year}-01-01", end=f"{last_year}-12-31")
    except (xc.errors.InvalidCalendarName, ValueError) as exc:
        raise ConfigError(f"calendar: {exc}") from None


def _span(name: str, start: date, end: date):
    last = max(datetime.now(UTC).year, end.year) + 1
    return _calendar(name, min(FIRST_YEAR, start.year), last)


@lru_cache(maxsize=64)
def _sessions(name: str, start: date, end: date) -> tuple[date, ...]:
    cal = _span(name, start, end)
    first, last = cal.first_session.date(), cal.last_session.date()
    lo, hi = max(start, first), min(end, last)
    if hi < lo:
        return ()
    found = cal.sessions_in_range(lo.isoformat(), hi.isoformat())
    return tuple(found.date)


@lru_cache(maxsize=16)
def _session_days(name: str, start: date, end: date) -> np.ndarray:
    """:func:`sessions` as a read-only datetime64[D] array."""
    out = np.array(_sessions(name, start, end), dtype="datetime64[D]")
    out.flags.writeable = False
    return out


def sessions(name: str, start: date, end: date) -> list[date]:
    """The exchange's sessions from ``start`` to ``end`` inclusive, as dates."""
    return list(_sessions(name, start, end))


def session_set(name: str, start: date, end: date) -> frozenset[date]:
    return frozenset(_sessions(name, start, end))


def split_days(name: str, days: Sequence[date]) -> tuple[list[date], list[date]]:
    """``days`` (days with bars) split into the calendar's sessions and the other days."""
    if not days:
        return [], []
    known = session_set(name, days[0], days[-1])
    return [d for d in days if d in known], [d for d in days if d not in known]


def data_gaps(
    name: str,
    start: date,
    end: date,
    dates: np.ndarray,
    close: np.ndarray,
    symbols: Sequence[str],
    listed: Iterable[tuple[str, date | None, date | None]],
) -> str | None:
    """One warning line counting the calendar's sessions without bars, or None when complete.

    ``dates`` (datetime64[D], sorted) and ``close`` (dates x ``symbols``, NaN where no bar) are the
    store's bars; ``listed`` gives each universe symbol's listing window. A session inside the
    period with no bar at all is a market-wide gap; a session inside a symbol's listing window
    without its bar is a symbol gap.
    """
    sess = _session_days(name, start, end)
    if not len(sess):
        return None
    pos = np.searchsorted(dates, sess)
    on_file = np.zeros(len(sess), dtype=bool)  # no bar on file at all: every session is a gap
    if len(dates):
        on_file = (pos < len(dates)) & (dates[np.minimum(pos, len(dates) - 1)] == sess)
    have = np.zeros((len(sess), len(symbols)), dtype=bool)  # session x symbol: a bar on file
    have[on_file] = ~np.isnan(close[pos[on_file]])
    any_bar = have.any(axis=1)
    empty = sess[~any_bar]
    col = {s: j for j, s in enumerate(symbols)}
    spans = [(sym, first, last) for sym, first, last in listed if first is not None]
    names = [sym for sym, _, _ in spans]
    j = np.array([col.get(sym, -1) for sym in names], dtype=np.int64)
    lo = np.array([first for _, first, _ in spans], dtype="datetime64[D]")
    hi = np.array([sess[-1] if last is None else np.datetime64(last, "D") for _, _, last in spans],
                  dtype="datetime64[D]")  # fmt: skip
    # each listing window is a run of sessions [a, b): a symbol's gaps are its missing bars
    # there (few: found once, sorted by column then session, and counted by binary search),
    # or every session with bars for a symbol with no bars on file
    a = np.searchsorted(sess, lo, side="left")
    b = np.maximum(a, np.searchsorted(sess, hi, side="right"))
    span = len(sess) + 1
    miss_t, miss_c = np.nonzero(~have & any_bar[:, None])
    missing = np.sort(miss_c.astype(np.int64) * span + miss_t)
    base = np.maximum(j, 0) * span
    own_gaps = np.searchsorted(missing, base + b) - np.searchsorted(missing, base + a)
    sessions_with_bars = np.concatenate(([0], np.cumsum(any_bar)))
    counts = np.where(j >= 0, own_gaps, sessions_with_bars[b] - sessions_with_bars[a])
    per_symbol = {names[k]: int(counts[k]) for k in np.flatnonzero(counts)}
    if not len(empty) and not per_symbol:
        return None
    parts = []
    if len(empty):
        parts.append(f"{len(empty)} {name} session(s) without any bar (first {str(empty[0])})")
    if per_symbol:
        worst = sorted(per_symbol.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        shown = ", ".join(f"{s} {n}" for s, n in worst)
        parts.append(
            f"{sum(per_symbol.values())} missing bar(s) of {len(per_symbol)} listed symbol(s) "
            f"on sessions that have other bars (most: {shown})"
        )
    return f"data gaps between {start} and {end}: " + "; ".join(parts)


def calendar_days(
    name: str,
    days: Sequence[date],
    cache: PriceCache,
    symbols: set[str] | None = None,
    sectors: set[str] | None = None,
) -> tuple[list[date], list[str]]:
    """The run's days (``days`` with bars that are sessions of calendar ``name``) and warnings.

    Bars on days that are not sessions (a wrong calendar, or data on a holiday) are not traded;
    sessions without bars inside the period are counted as data gaps (:func:`data_gaps`) for the
    universe's securities (narrowed to ``symbols`` or ``sectors`` when given).
    """
    kept, other = split_days(name, days)
    notes = []
    if other:
        notes.append(
            f"{len(other)} day(s) with bars are not {name} sessions (first {other[0]}): "
            "not traded; set calendar: to the data's exchange"
        )
    if len(kept) < 2:
        span = f"{days[0]} and {days[-1]}" if days else "the period's days"
        raise ConfigError(
            f"calendar: fewer than two {name} sessions with bars between {span}; "
            "is calendar: the exchange of the data?"
        )
    listed = [
        (s.symbol, s.universe_from, s.universe_to)
        for s in cache.securities
        if (symbols is None or s.symbol in symbols) and (sectors is None or s.sector in sectors)
    ]
    gap = data_gaps(name, kept[0], kept[-1], cache.dates, cache.values["close"], cache.symbols,
                    listed)  # fmt: skip
    return kept, notes + ([gap] if gap else [])
