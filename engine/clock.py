"""Clocks emit ``(day, events)``: the simulation walks the data's trading days; live mode walks
wall time with the same events (``engine.live``). The runner only ever sees this interface."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

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
    """Trading days of the data between start and end, with rebalance and retrain events.

    Retraining happens on the first rebalance day of each retrain period, before the plan, using
    what is known at that day's close (as the live Sunday-night job uses Friday's close).
    """

    def __init__(
        self,
        days: Sequence[date],
        rebalance: RebalanceConfig,
        retrain: str | None = None,
    ):
        self.days = list(days)
        self._rebalance = rebalance_days(self.days, rebalance)
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
