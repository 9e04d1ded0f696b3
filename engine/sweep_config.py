"""Sweep configs: a base run config, a grid over any key path (or named variants), periods.

Kept apart from :mod:`engine.sweep` (the score cache and replay) so that a sweep file is read and
every point validated before pandas and the engine are imported: a bad sweep file is an error
within a second. An error names the sweep file and the line of the grid value, variant or period.
"""

from __future__ import annotations

import copy
import itertools
import math
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.config import (
    Day,
    Int,
    PathText,
    RunConfig,
    _format_errors,
    _line_of,
    error_parts,
    key_path,
    load_config,
    one_line,
    read_yaml,
    set_path,
)
from sentinel.errors import ConfigError


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start: Day
    end: Day


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    set: dict[str, Any]


class ExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["local", "dask"] = "local"
    workers: Int = Field(default=2, ge=1, le=256)
    address: str | None = Field(default=None, description="tcp://host:port of a Dask scheduler")


#: A sweep has at most this many points (grid combinations plus variants), counted from the grid's
#: sizes before anything is expanded; each point runs on the selection and test periods if given.
MAX_SWEEP_POINTS = 10_000
#: A grid varies at most this many keys (labels stay short).
MAX_GRID_KEYS = 32


def _grid_points(grid: dict[str, list[Any]]) -> int:
    return math.prod(len(v) for v in grid.values() if isinstance(v, list)) if grid else 0


class SweepConfig(BaseModel):
    """``base`` (a run config mapping, or a path to one) plus ``grid`` and/or ``variants``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "sweep"
    base: RunConfig
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: tuple[Variant, ...] = ()
    selection: Period | None = None
    test: Period | None = None
    metric: str = "sharpe_ratio"
    executor: ExecutorConfig = ExecutorConfig()
    output: PathText | None = None

    @field_validator("grid")
    @classmethod
    def _grid_size(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if len(grid) > MAX_GRID_KEYS:
            raise ValueError(f"{len(grid)} keys; a grid may vary at most {MAX_GRID_KEYS}")
        points = _grid_points(grid)
        if points > MAX_SWEEP_POINTS:
            sizes = " x ".join(str(len(v)) for v in grid.values())
            raise ValueError(
                f"{points:,} points ({sizes}); a sweep may have at most {MAX_SWEEP_POINTS:,}"
            )
        return grid

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        if not self.grid and not self.variants:
            raise ValueError("a sweep needs a grid or variants")
        if (self.selection is None) != (self.test is None):
            raise ValueError("selection and test periods go together")
        if self.selection and self.test and self.test.start <= self.selection.end:
            raise ValueError("the test period must start after the selection period ends")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key}: a non-empty list of values")
        points = _grid_points(self.grid) + len(self.variants)
        if points > MAX_SWEEP_POINTS:
            raise ValueError(
                f"{points:,} points (grid and variants); a sweep may have at most "
                f"{MAX_SWEEP_POINTS:,}"
            )
        return self


@dataclass(frozen=True)
class Point:
    """One sweep point: its label, changes, the validated config, and the period it covers."""

    label: str
    changes: dict[str, Any]
    config: RunConfig
    period: str  # "full" | "selection" | "test"

    @property
    def key(self) -> str:
        return f"{self.period}-{self.config.config_hash()}"


def load_sweep(path: str | Path) -> SweepConfig:
    """Load a sweep file; ``base`` may be a mapping or the path of a run config.

    Every point is validated before the sweep is returned; any error names this file, the key
    path and the line (a grid value's own line).
    """
    path = Path(path)
    data, root = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(one_line(f"{path}: a sweep config must be a mapping"))
    if isinstance(data.get("base"), str):
        where = f"{path}: base (line {_line_of(root, ('base',))})"
        try:
            base_path = (path.parent / data["base"]).resolve()
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(one_line(f"{where}: not a usable path ({exc})")) from None
        try:
            data["base"] = load_config(base_path).model_dump(mode="json")
        except ConfigError as exc:
            raise ConfigError(one_line(f"{where}: {exc}")) from None
    try:
        sweep = SweepConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(path), root)) from None
    expand(sweep, str(path), root)  # every point is validated before anything runs
    return sweep


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 6, 6, 4
_REPR.maxstring = _REPR.maxother = 40
_SHOWN = 60  # characters of a value in a point's label


def _show(value: Any) -> str:
    """A short, bounded rendering of a grid value (never the whole of a huge value)."""
    try:
        text = value if isinstance(value, str) else (
            _REPR.repr(value) if isinstance(value, list | tuple | dict | set) else str(value)
        )  # fmt: skip
    except ValueError:  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return one_line(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def _shown(values: list[Any]) -> list[str]:
    """The labels of one grid key's values, made unique (``#i``) where two would look alike."""
    out: list[str] = []
    seen: set[str] = set()
    for i, value in enumerate(values):
        text = _show(value)
        if text in seen:
            text = f"{text}#{i}"
        seen.add(text)
        out.append(text)
    return out


def _blame(changes: dict[str, Any], loc: tuple[Any, ...]) -> str | None:
    """The change that an error at run-config location ``loc`` comes from (if one does)."""
    dotted = ".".join(str(x) for x in loc)
    for key in changes:
        if (
            not dotted
            or dotted == key
            or dotted.startswith(f"{key}.")
            or key.startswith(f"{dotted}.")
        ):
            return key
    return next(iter(changes), None)


def _point_error(
    source: str | None, root: Any, label: str, origin: dict[str, tuple[Any, ...]], detail: str,
    loc: tuple[Any, ...], changes: dict[str, Any],
) -> ConfigError:  # fmt: skip
    key = _blame(changes, loc)
    where = ""
    if source is not None:
        at = origin.get(key, ()) if key is not None else ()
        line = _line_of(root, at) if at else None
        where = f"{source}: " + (f"{key_path(at)} (line {line}): " if line else "")
    return ConfigError(one_line(f"{where}sweep point [{label}]: {detail}"))


def expand(sweep: SweepConfig, source: str | None = None, root: Any = None) -> list[Point]:
    """Every point, validated like a run config (a bad key or value fails before any run).

    Points are made one at a time: each is validated before the next is made, and labels are
    short whatever the values. With ``source`` and ``root`` (the sweep file and its YAML tree),
    an error names the file and the line of the grid value, variant or period that caused it.
    """
    periods: list[tuple[str, dict[str, Any], dict[str, tuple[Any, ...]]]] = [("full", {}, {})]
    if sweep.selection and sweep.test:
        periods = [
            (name, {"start": p.start, "end": p.end},
             {"start": (name, "start"), "end": (name, "end")})
            for name, p in (("selection", sweep.selection), ("test", sweep.test))
        ]  # fmt: skip
    base = sweep.base.model_dump(mode="json")
    points = []
    for label, changes, origin in _combos(sweep):
        for period, span, span_origin in periods:
            updates = {**changes, **span}
            where = {**origin, **span_origin}
            data = copy.deepcopy(base)
            for key, value in updates.items():
                try:
                    set_path(data, key, value)
                except ConfigError as exc:  # an unknown key path
                    loc = tuple(key.split("."))
                    raise _point_error(source, root, label, where, str(exc), loc, updates) from None
            try:
                cfg = RunConfig.model_validate(data)
            except ValidationError as exc:
                parts = list(error_parts(exc, None))
                detail = "; ".join(text for _, text in parts)
                loc = parts[0][0]
                raise _point_error(source, root, label, where, detail, loc, updates) from None
            points.append(Point(label, changes, cfg, period))
    return points


def _combos(sweep: SweepConfig):
    """``(label, changes, origin)`` per point, lazily; origin maps a change to its YAML path."""
    if sweep.grid:
        keys = list(sweep.grid)
        shown = {k: _shown(sweep.grid[k]) for k in keys}
        names = {k: one_line(k if len(k) <= _SHOWN else k[: _SHOWN - 3] + "...") for k in keys}
        for idx in itertools.product(*(range(len(sweep.grid[k])) for k in keys)):
            changes = {k: sweep.grid[k][i] for k, i in zip(keys, idx, strict=True)}
            origin = {k: ("grid", k, i) for k, i in zip(keys, idx, strict=True)}
            label = ", ".join(f"{names[k]}={shown[k][i]}" for k, i in zip(keys, idx, strict=True))
            yield label, changes, origin
    for n, v in enumerate(sweep.variants):
        yield v.name, dict(v.set), {k: ("variants", n, "set", k) for k in v.set}
