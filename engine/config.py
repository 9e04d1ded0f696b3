"""Typed run configs loaded from YAML: strict (unknown keys rejected), frozen, hashable.

A config error names the key path and the YAML line it came from, e.g.
``configs/x.yaml: ml.blend_ratio (line 12): Input should be less than or equal to 1``.
A config's hash (of its canonical JSON) names its run and keys the sweep caches.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentinel.errors import ConfigError
from sentinel.ml.policy import WALK_FORWARD_MAX_EPOCHS
from strategies import STRATEGIES

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImportSpec(StrictModel):
    """A file to import into the run's store before the run when the store has no prices."""

    path: str
    kind: Literal["prices", "benchmark", "sectors", "sentiment"] | None = None
    skip_bad: bool = False
    adjust: Literal["none", "adj_close"] = "none"


class DataConfig(StrictModel):
    """Where the bars come from: the store the settings name (default), or the demo universe.

    With ``url`` the run uses that store; ``imports`` are loaded into it first when it holds no
    prices (relative paths are read from the config file's folder).
    """

    source: Literal["store", "demo"] = "store"
    url: str | None = Field(default=None, description="Database URL; default: the settings'.")
    imports: tuple[ImportSpec, ...] = ()
    demo_seed: int = 7
    demo_symbols: int = Field(default=50, ge=2, le=2000)


class UniverseConfig(StrictModel):
    """Which securities may be traded; always intersected with the universe as of each day."""

    kind: Literal["all", "list", "sector"] = "all"
    symbols: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> UniverseConfig:
        if self.kind == "list" and not self.symbols:
            raise ValueError("universe.kind 'list' needs universe.symbols")
        if self.kind == "sector" and not self.sectors:
            raise ValueError("universe.kind 'sector' needs universe.sectors")
        return self


class RebalanceConfig(StrictModel):
    """When to rebalance: weekly on a weekday, the first trading day of each week, monthly (last
    trading day), or every N trading days."""

    every: Literal["weekly", "week_start", "monthly", "days"] = "weekly"
    weekday: Weekday = "friday"
    n_days: int | None = Field(default=None, ge=1)
    min_trade_weight: float = Field(
        default=0.005, ge=0.0, le=0.5,
        description="Skip resizing a kept position by less than this fraction of equity.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _check(self) -> RebalanceConfig:
        if self.every == "days" and self.n_days is None:
            raise ValueError("rebalance.every 'days' needs rebalance.n_days")
        return self


class StrategyConfig(StrictModel):
    """A strategy by registry key and its typed parameters."""

    name: str = "top_n"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> StrategyConfig:
        if self.name not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.name!r}; available: {', '.join(sorted(STRATEGIES))}"
            )
        try:
            STRATEGIES[self.name].Params.model_validate(self.params)
        except ValidationError as exc:
            detail = "; ".join(
                f"params.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(detail) from None
        return self

    def build(self):
        cls = STRATEGIES[self.name]
        return cls(cls.Params.model_validate(self.params))


class CostsConfig(StrictModel):
    """Trading costs and fills: orders decided at T's close fill at T+1's open (or close)."""

    commission_bps: float = Field(default=1.0, ge=0)
    min_commission: float = Field(default=1.0, ge=0)
    slippage_bps: float = Field(default=5.0, ge=0)
    fill: Literal["next_open", "next_close"] = "next_open"
    fractional: bool = Field(default=False, description="Trade fractional shares.")


class MLConfig(StrictModel):
    """ML in the loop. ``walk_forward`` retrains in simulated time; ``current`` uses stored models
    (trained on the future: the report flags the run as look-ahead); ``off`` is wavelet only.

    ``enabled``, ``blend_ratio``, ``horizon_days`` and ``min_samples`` left unset (None) follow the
    settings (``sentinel.settings``, the one home of their defaults); the run's session resolves
    them before anything runs (:func:`engine.session.resolve_config`).
    """

    enabled: bool | None = None
    blend_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    mode: Literal["walk_forward", "current", "off"] = "walk_forward"
    retrain: Literal["weekly", "monthly", "quarterly", "yearly"] = "monthly"
    horizon_days: int | None = Field(default=None, ge=1, le=365)
    min_samples: int | None = Field(default=None, ge=10)
    max_epochs: int = Field(default=WALK_FORWARD_MAX_EPOCHS, ge=1, le=1000)

    @property
    def active(self) -> bool:
        """ML takes part (``enabled`` unset counts as on until the settings say otherwise)."""
        return self.enabled is not False and self.mode != "off"

    @property
    def walk_forward(self) -> bool:
        return self.active and self.mode == "walk_forward"


class LiveConfig(StrictModel):
    """Live mode: where new bars come from and which paper account the run trades."""

    provider: Literal["csv", "yfinance"] = "csv"
    drop_dir: str | None = Field(default=None, description="Folder of CSV/Parquet bar drops.")
    account: str | None = Field(default=None, description="Paper account name (default: name).")
    poll_seconds: int = Field(default=3600, ge=1, description="Wait between live checks.")


class RunConfig(StrictModel):
    """One backtest: data, universe, period, schedule, strategy, costs, ML, benchmark, output."""

    name: str = "run"
    data: DataConfig = DataConfig()
    universe: UniverseConfig = UniverseConfig()
    start: date
    end: date
    rebalance: RebalanceConfig = RebalanceConfig()
    strategy: StrategyConfig = StrategyConfig()
    costs: CostsConfig = CostsConfig()
    ml: MLConfig = MLConfig()
    benchmark: str | None = None
    initial_cash: float = Field(default=1_000_000.0, gt=0)
    seed: int = 7
    output: str | None = None
    live: LiveConfig = LiveConfig()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def config_hash(self) -> str:
        """A stable hash of everything that defines the run (names a run; keys caches)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_updates(self, updates: dict[str, Any]) -> RunConfig:
        """A copy with dotted-key updates applied and validated like a loaded config."""
        data = self.model_dump(mode="json")
        for key, value in updates.items():
            set_path(data, key, value)
        return validate_config(data, source="<updates>")


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts; an unknown intermediate key is a clear error."""
    parts = dotted.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"unknown config key {'.'.join(parts[: i + 1])!r} in {dotted!r}")
        node = node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"config key {dotted!r} does not name a field")
    node[parts[-1]] = value


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The YAML line (1-based) of the deepest node on the path ``loc``."""
    line = None if node is None else node.start_mark.line + 1
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == str(key):
                node, line = v, k.start_mark.line + 1
                break
        else:
            break
    return line


def _format_errors(exc: ValidationError, source: str, root: yaml.Node | None) -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
        key = ".".join(str(x) for x in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{key} (line {line})" if line else key
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return f"{source}: " + "; ".join(parts)


def validate_config(data: Any, source: str = "<config>", root: yaml.Node | None = None):
    """Validate a mapping as a :class:`RunConfig`, turning errors into one clear message."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a run config must be a mapping of keys to values")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source, root)) from None


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse YAML, keeping the node tree for line numbers; syntax errors name the line."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None


def load_config(path: str | Path) -> RunConfig:
    """Load and validate a run config file (import paths resolved against its folder)."""
    path = Path(path)
    data, root = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        for spec in data["data"].get("imports") or []:
            if isinstance(spec, dict) and "path" in spec:
                spec["path"] = str((path.parent / str(spec["path"])).resolve())
    return validate_config(data, str(path), root)
