"""Clocks emit ``(day, events)``: the simulation walks the days with bars; live mode walks wall
time with the same events (``engine.live``). The runner only ever sees this interface.

Rebalance days come from the exchange calendar (:mod:`engine.calendar`), not from the days with
bars: the schedule is known in advance (a holiday Friday moves the weekly rebalance to Thursday
before it happens), is the same for a backtest and a live run of the config, and does not depend
on where the period or the data ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from engine.calendar import sessions
from engine.config import RebalanceConfig

WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4}


class EventType(StrEnum):
    """What happens on a day beyond the open's fills and the close's mark (which every tick has)."""

    RETRAIN = "retrain"
    REBALANCE = "rebalance"


@dataclass(frozen=True)
class Tick:
    """One trading day and its events, in order (none on a plain day: fill at the open, mark)."""

    day: date
    events: tuple[EventType, ...]

    def has(self, event: EventType) -> bool:
        return event in self.events


def rebalance_days(days: Sequence[date], cfg: RebalanceConfig) -> set[date]:
    """The trading days on which the schedule rebalances (decided at that day's close).

    weekly: the configured weekday, or the last trading day before it in the same week when it
    is a holiday; week_start: the first trading day of each week; monthly: the last trading day
    of each month; days: every N-th trading day.
    """
    if cfg.every == "days":
        n = cfg.n_days or 1
        return {d for i, d in enumerate(days) if i % n == 0}
    out: set[date] = set()
    if cfg.every == "monthly":
        for i, d in enumerate(days):
            nxt = days[i + 1] if i + 1 < len(days) else None
            if nxt is None or (nxt.year, nxt.month) != (d.year, d.month):
                out.add(d)
        return out
    target = WEEKDAYS[cfg.weekday]
    by_week: dict[tuple[int, int], list[date]] = {}
    for d in days:
        by_week.setdefault(tuple(d.isocalendar())[:2], []).append(d)  # type: ignore[arg-type]
    if cfg.every == "week_start":
        return {week[0] for week in by_week.values()}
    for week in by_week.values():
        on_or_before = [d for d in week if d.weekday() <= target]
        if on_or_before:
            out.add(on_or_before[-1])
    return out


def scheduled_rebalances(
    calendar: str, rebalance: RebalanceConfig, start: date, end: date
) -> set[date]:
    """The calendar's rebalance sessions from ``start`` to ``end``.

    The rule sees the sessions after ``end`` too, so a period (or the data known so far) that
    ends mid-month does not make its last day a "month end". It starts at ``start``: the first
    session of the period counts as a week's first (``week_start``) and every N days counts from
    it, as in a backtest of the data's days.
    """
    sess = sessions(calendar, start, end + timedelta(days=35))
    return {d for d in rebalance_days(sess, rebalance) if start <= d <= end}


def period_key(d: date, cadence: str) -> tuple[int, ...]:
    """The retrain period a day belongs to."""
    if cadence == "weekly":
        return tuple(d.isocalendar())[:2]
    if cadence == "monthly":
        return (d.year, d.month)
    if cadence == "quarterly":
        return (d.year, (d.month - 1) // 3)
    return (d.year,)


class SimulationClock:
    """Days with bars between start and end, with rebalance and retrain events.

    With a ``calendar`` the rebalance days are the calendar's (:func:`scheduled_rebalances` from
    ``start``, default the first day); a scheduled session without bars is skipped (a data gap,
    reported by the session). Without one the rule runs over ``days`` themselves.
    Retraining happens on the first rebalance day of each retrain period, before the plan, using
    what is known at that day's close (as the live Sunday-night job uses Friday's close).
    """

    def __init__(
        self,
        days: Sequence[date],
        rebalance: RebalanceConfig,
        retrain: str | None = None,
        *,
        calendar: str | None = None,
        start: date | None = None,
    ):
        self.days = list(days)
        if calendar is None or not self.days:
            self._rebalance = rebalance_days(self.days, rebalance)
        else:
            planned = scheduled_rebalances(
                calendar, rebalance, start or self.days[0], self.days[-1]
            )
            self._rebalance = planned.intersection(self.days)
        self._retrain: set[date] = set()
        if retrain:
            seen: set[tuple[int, ...]] = set()
            for d in self.days:
                key = period_key(d, retrain)
                if d in self._rebalance and key not in seen:
                    seen.add(key)
                    self._retrain.add(d)

    @property
    def rebalance_dates(self) -> list[date]:
        return sorted(self._rebalance)

    def __len__(self) -> int:
        return len(self.days)

    def __iter__(self) -> Iterator[Tick]:
        for d in self.days:
            events = []
            if d in self._retrain:
                events.append(EventType.RETRAIN)
            if d in self._rebalance:
                events.append(EventType.REBALANCE)
            yield Tick(d, tuple(events))
