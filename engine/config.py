"""Typed run configs loaded from YAML: strict (unknown keys rejected), frozen, hashable.

A config error names the key path and the YAML line it came from, e.g.
``configs/x.yaml: ml.blend_ratio (line 12): Input should be less than or equal to 1``.
A config's hash (of its canonical JSON) names its run and keys the sweep caches.

Reading is safe by default (:func:`read_yaml`): a file must be UTF-8 text of at most
:data:`MAX_CONFIG_BYTES`; keys may not repeat; values nest at most :data:`MAX_YAML_DEPTH` levels;
aliases may not make the document stand for more than :data:`MAX_YAML_VALUES` values (a
"billion laughs" guard) nor refer to themselves; a value YAML cannot read (``2019-02-30``) is
refused. Numbers are strict: ``true`` is not 1, ``"5"`` is not 5 (an integer is fine where a
float is expected), and NaN and infinity are refused. Symbols follow the one symbol rule
(:mod:`sentinel.symbols`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.calendar import DEFAULT_CALENDAR, check_calendar_name
from sentinel.data.kinds import Kind
from sentinel.errors import ConfigError
from sentinel.ml.policy import WALK_FORWARD_MAX_EPOCHS
from sentinel.symbols import InvalidSymbolError, check_symbol
from strategies import resolve as resolve_strategy

#: ``ml.features`` default: the 20 built-ins (sentinel.feature_registry.DEFAULT). The registry
#: is imported only when a config names features, so a config error appears before SciPy loads.
DEFAULT_FEATURES = "default"


def expand_features(names: tuple[str, ...] | list[str]) -> list[str]:
    from sentinel.feature_registry import run_features  # lazy: SciPy, ~1 s

    return run_features(names)


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday"]

#: A config file larger than this is refused before it is parsed (bytes).
MAX_CONFIG_BYTES = 256 * 1024
#: At most this many values (a long string counting one per 100 characters) once aliases are
#: expanded: a small file cannot stand for a huge document.
MAX_YAML_VALUES = 100_000
#: Mappings and lists nest at most this deep (aliases expanded).
MAX_YAML_DEPTH = 64

# Strict scalars: a bool is not a number, a string is not a number, a number is not a bool; an
# integer is accepted where a float is expected; NaN and infinity are refused.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Bool = Annotated[bool, Strict()]


def _date_input(value: Any) -> Any:
    if isinstance(value, bool | int | float):  # pydantic would read a number as a timestamp
        raise ValueError(f"a date like 2019-01-31 is needed, not {value!r}")
    return value


def _symbol(value: str) -> str:
    try:
        return check_symbol(value, "symbol")
    except InvalidSymbolError as exc:
        raise ValueError(str(exc).removeprefix("symbol: ")) from None


def _path_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a path may not contain a NUL character")
    return value


def _calendar_name(value: str) -> str:
    return value if value == DEFAULT_CALENDAR else check_calendar_name(value)


def _yaml_off(value: Any) -> Any:
    """``mode: off`` as written: YAML 1.1 reads a bare ``off`` (or ``no``) as false."""
    return "off" if value is False else value


Day = Annotated[date, BeforeValidator(_date_input)]
Symbol = Annotated[str, AfterValidator(_symbol)]
PathText = Annotated[str, AfterValidator(_path_text)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImportSpec(StrictModel):
    """A file to import into the run's store before the run when the store has no prices."""

    path: PathText
    kind: Kind | None = None
    skip_bad: Bool = False
    adjust: Literal["none", "adj_close"] = "none"


class DataConfig(StrictModel):
    """Where the bars come from: the store the settings name (default), or the demo universe.

    With ``url`` the run uses that store; ``imports`` are loaded into it first when it holds no
    prices (relative paths are read from the config file's folder).
    """

    source: Literal["store", "demo"] = "store"
    url: PathText | None = Field(default=None, description="Database URL; default: the settings'.")
    imports: tuple[ImportSpec, ...] = ()
    demo_seed: Int = 7
    demo_symbols: Int = Field(default=50, ge=2, le=2000)


class UniverseConfig(StrictModel):
    """Which securities may be traded; always intersected with the universe as of each day."""

    kind: Literal["all", "list", "sector", "index"] = "all"
    symbols: tuple[Symbol, ...] = ()
    sectors: tuple[str, ...] = ()
    name: str | None = Field(default=None, description="kind index: the index (membership file).")
    stale_after: Int | None = Field(
        default=20, ge=1, description="Sessions without a bar after which a symbol leaves."
    )

    @model_validator(mode="after")
    def _check(self) -> UniverseConfig:
        if self.kind == "list" and not self.symbols:
            raise ValueError("universe.kind 'list' needs universe.symbols")
        if self.kind == "sector" and not self.sectors:
            raise ValueError("universe.kind 'sector' needs universe.sectors")
        if self.kind == "index" and not self.name:
            raise ValueError("universe.kind 'index' needs universe.name")
        return self


class RebalanceConfig(StrictModel):
    """When to rebalance: weekly on a weekday, the first trading day of each week, monthly (last
    trading day), or every N trading days."""

    every: Literal["weekly", "week_start", "monthly", "days"] = "weekly"
    weekday: Weekday = "friday"
    n_days: Int | None = Field(default=None, ge=1)
    min_trade_weight: Float = Field(
        default=0.005, ge=0.0, le=0.5,
        description="Skip resizing a kept position by less than this fraction of equity.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _check(self) -> RebalanceConfig:
        if self.every == "days" and self.n_days is None:
            raise ValueError("rebalance.every 'days' needs rebalance.n_days")
        return self


class StrategyConfig(StrictModel):
    """A strategy by name (built-in key, ``package.module:Class``, a class in the user folder
    ``dir``, or an installed entry point: :mod:`strategies.registry`) and its typed parameters."""

    dir: PathText | None = Field(
        default=None, description="Folder of user strategy files (*.py); relative to the config."
    )
    name: str = "top_n"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str, info: ValidationInfo) -> str:
        resolve_strategy(name, info.data.get("dir"))  # raises a one-line ValueError
        return name

    @model_validator(mode="after")
    def _check(self) -> StrategyConfig:
        try:
            resolve_strategy(self.name, self.dir).Params.model_validate(self.params)
        except ValidationError as exc:
            detail = "; ".join(
                f"params.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(detail) from None
        return self

    def build(self):
        cls = resolve_strategy(self.name, self.dir)
        return cls(cls.Params.model_validate(self.params))


class CostsConfig(StrictModel):
    """Trading costs and fills: orders decided at T's close fill at T+1's open (or close)."""

    commission_bps: Float = Field(default=1.0, ge=0)
    min_commission: Float = Field(default=1.0, ge=0)
    slippage_bps: Float = Field(default=5.0, ge=0)
    fill: Literal["next_open", "next_close"] = "next_open"
    fractional: Bool = Field(default=False, description="Trade fractional shares.")
    model: Literal["fixed", "sqrt_impact"] = Field(
        default="fixed",
        description="fixed: slippage_bps only; sqrt_impact: plus impact_coef * daily volatility "
        "* sqrt(order / average daily volume) (engine.costs).",
    )
    impact_coef: Float = Field(default=1.0, ge=0, le=10)
    adv_days: Int = Field(default=20, ge=2, le=250, description="Days of volume and volatility.")
    participation_cap: Float | None = Field(
        default=None, gt=0, le=1, description="At most this fraction of the day's volume per order."
    )
    on_cap: Literal["cancel", "carry"] = Field(
        default="cancel", description="The capped rest of an order: cancelled or carried a day."
    )
    dividend_tax: Float = Field(
        default=0.0, ge=0, le=1, description="Tax withheld on cash dividends (0.15 = 15 %)."
    )


class TrainExecutorConfig(StrictModel):
    """Where walk-forward per-symbol training runs: in process, or cut into one chunk per Dask
    worker (the sweep executor's shape; ``address`` unset starts a local cluster)."""

    kind: Literal["local", "dask"] = "local"
    workers: Int = Field(default=2, ge=1, le=256)
    address: str | None = Field(default=None, description="tcp://host:port of a Dask scheduler")


class MLConfig(StrictModel):
    """ML in the loop. ``walk_forward`` retrains in simulated time; ``current`` uses stored models
    (trained on the future: the report flags the run as look-ahead); ``off`` is wavelet only.

    ``enabled``, ``blend_ratio``, ``horizon_days`` and ``min_samples`` left unset (None) follow the
    settings (``sentinel.settings``, the one home of their defaults); the run's session resolves
    them before anything runs (:func:`engine.session.resolve_config`).
    """

    enabled: Bool | None = None
    blend_ratio: Float | None = Field(default=None, ge=0.0, le=1.0)
    mode: Annotated[Literal["walk_forward", "current", "off"], BeforeValidator(_yaml_off)] = (
        "walk_forward"
    )
    retrain: Literal["weekly", "monthly", "quarterly", "yearly"] = "monthly"
    horizon_days: Int | None = Field(default=None, ge=1, le=365)
    min_samples: Int | None = Field(default=None, ge=10)
    max_epochs: Int = Field(default=WALK_FORWARD_MAX_EPOCHS, ge=1, le=1000)
    select_every: Int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Walk-forward: pick the network's epoch count and the booster's tree count "
        "(early stopping on a purged inner split) every N-th retrain; the retrains between "
        "refit on every known sample with the counts last picked (one fit instead of two).",
    )
    warm_start: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Walk-forward with select_every > 1: a refit between two picks starts from "
        "the symbol's network of the previous retrain (trained on earlier data only) and "
        "trains this share of the picked epochs (at least one) instead of all of them from "
        "fresh weights. 0 (default): every refit starts fresh.",
    )
    model: Literal["per_symbol", "pooled", "hierarchical"] | None = Field(
        default=None,
        description="Model kind (sentinel.ml.pooled); unset follows the setting ml_model.",
    )
    target: Literal["return", "excess", "rank"] | None = Field(
        default=None,
        description="Training label: horizon return, excess over the universe's mean that day, "
        "or cross-sectional percentile; unset follows the setting ml_target.",
    )
    label_from: Literal["close", "next_open"] = Field(
        default="close",
        description="Where the label's return starts: the sample day's close, or the next "
        "open (what the broker can trade).",
    )
    # where, not what: not part of the config hash (RunConfig.config_hash)
    train_executor: TrainExecutorConfig = Field(
        default=TrainExecutorConfig(),
        description="Per-symbol walk-forward training in process (local) or fanned out over Dask.",
    )
    features: tuple[str, ...] = Field(
        default=(DEFAULT_FEATURES,),
        description="Model inputs by name: 'default' (the 20 built-ins), extras, 'pkg.mod:fn' "
        "(sentinel.feature_registry).",
    )

    @field_validator("features")
    @classmethod
    def _features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if tuple(value) != (DEFAULT_FEATURES,):
            expand_features(value)  # raises a one-line ValueError naming the bad feature
        return value

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in order (``default`` expanded)."""
        return expand_features(self.features)

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
    drop_dir: PathText | None = Field(default=None, description="Folder of CSV/Parquet bar drops.")
    account: str | None = Field(default=None, description="Paper account name (default: name).")
    poll_seconds: Int = Field(default=3600, ge=1, description="Wait between live checks.")


class RunConfig(StrictModel):
    """One backtest: data, universe, period, schedule, strategy, costs, ML, benchmark, output."""

    name: str = "run"
    data: DataConfig = DataConfig()
    universe: UniverseConfig = UniverseConfig()
    start: Day
    end: Day
    rebalance: RebalanceConfig = RebalanceConfig()
    strategy: StrategyConfig = StrategyConfig()
    costs: CostsConfig = CostsConfig()
    ml: MLConfig = MLConfig()
    benchmark: Symbol | None = None
    calendar: Annotated[str, AfterValidator(_calendar_name)] = Field(
        default=DEFAULT_CALENDAR, description="Exchange calendar (exchange_calendars name)."
    )
    initial_cash: Float = Field(default=1_000_000.0, gt=0)
    seed: Int = 7
    output: PathText | None = None
    live: LiveConfig = LiveConfig()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def config_hash(self) -> str:
        """A stable hash of everything that defines the run (names a run; keys caches)."""
        data = self.model_dump(mode="json")
        data["ml"].pop("train_executor")  # where training runs, not what the run computes
        for key, neutral in (("select_every", 1), ("warm_start", 0.0)):
            if data["ml"][key] == neutral:  # the neutral value computes what older configs did:
                data["ml"].pop(key)  # their names and caches stay valid
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_updates(self, updates: dict[str, Any]) -> RunConfig:
        """A copy with dotted-key updates applied and validated like a loaded config."""
        data = self.model_dump(mode="json")
        for key, value in updates.items():
            set_path(data, key, value)
        return validate_config(data, source="<updates>")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["ml.model=pooled", "ml.blend_ratio=0.5"]`` -> dotted keys to YAML-parsed values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. ml.model=pooled")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not YAML ({exc})") from None
    return out


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


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: an error is one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def key_path(loc: tuple[Any, ...]) -> str:
    """``ml.blend_ratio``, ``universe.symbols[1]``: a location as the user wrote it."""
    if len(loc) > 12:  # a deep path: its start and its end tell where
        return f"{key_path(loc[:6])}...{key_path(loc[-3:])}"
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The YAML line (1-based) of the deepest node on the path ``loc``."""
    line = None if node is None else node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if not 0 <= key < len(node.value):
                break
            node = node.value[key]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == str(key):
                node, line = v, k.start_mark.line + 1
                break
        else:
            break
    return line


def error_parts(exc: ValidationError, root: yaml.Node | None, prefix: tuple[Any, ...] = ()):
    """``(loc, "key (line N): message")`` for each error, ``loc`` relative to the model."""
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
        line = _line_of(root, prefix + loc)
        where = f"{key_path(loc)} (line {line})" if line else key_path(loc)
        yield loc, f"{where}: {err['msg'].removeprefix('Value error, ')}"


def _format_errors(exc: ValidationError, source: str, root: yaml.Node | None) -> str:
    return one_line(f"{source}: " + "; ".join(part for _, part in error_parts(exc, root)))


def validate_config(data: Any, source: str = "<config>", root: yaml.Node | None = None):
    """Validate a mapping as a :class:`RunConfig`, turning errors into one clear message."""
    if not isinstance(data, dict):
        raise ConfigError(one_line(f"{source}: a run config must be a mapping of keys to values"))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source, root)) from None


# -- reading YAML safely ---------------------------------------------------------------------------
_REFUSED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("binary", "set", "omap", "pairs")}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_KINDS = {"timestamp": "a date", "int": "an integer", "float": "a number", "bool": "a boolean"}


class _Refused(Exception):
    """A node the reader refuses, with its key path when known (else found afterwards)."""

    def __init__(self, node: yaml.Node, message: str, path: tuple[Any, ...] | None = None):
        super().__init__(message)
        self.node = node
        self.message = message
        self.path = path


def _unreadable(node: yaml.Node, exc: BaseException, path: tuple[Any, ...] | None = None):
    value = node.value if isinstance(node, yaml.ScalarNode) else ""
    shown = repr(value if len(value) <= 40 else value[:37] + "...")
    reason = str(exc).split(";")[0] or type(exc).__name__
    kind = node.tag.rsplit(":", 1)[-1]
    kind = _KINDS.get(kind, kind)
    return _Refused(node, f"cannot read {shown} as {kind}: {reason}", path)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit and every construction error tied to its node."""

    def __init__(self, stream: str):
        self.trail: list[Any] = []  # the key path being composed, for the nesting limit
        super().__init__(stream)

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        trail = self.trail
        trail.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        try:
            if len(trail) > MAX_YAML_DEPTH:
                path = tuple(x for x in trail[1:] if x is not None)
                mark = self.peek_event().start_mark
                message = f"values are nested more than {MAX_YAML_DEPTH} levels deep"
                raise _Refused(yaml.ScalarNode("", "", mark), message, path)
            return super().compose_node(parent, index)
        finally:
            trail.pop()

    def construct_object(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        try:
            return super().construct_object(node, deep)
        except (_Refused, yaml.YAMLError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bad scalar: 2019-02-30, !!bool maybe, ...
            raise _unreadable(node, exc) from None


class _Checker:
    """One walk of the node graph before anything is built: cycles, depth, size, duplicate keys.

    Each distinct node is visited once (aliases reuse their anchor's node), so the walk is linear
    in the file however far its aliases would expand. Records each node's first key path.
    """

    def __init__(self):
        self.size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
        self.paths: dict[int, tuple[Any, ...]] = {}
        self.open: set[int] = set()
        self.keys = yaml.constructor.SafeConstructor()

    def visit(self, node: yaml.Node, path: tuple[Any, ...], depth: int) -> tuple[int, int]:
        if depth > MAX_YAML_DEPTH:  # defensive: composing stops at this depth already
            raise _Refused(node, f"values are nested more than {MAX_YAML_DEPTH} levels deep", path)
        nid = id(node)
        if nid in self.open:
            raise _Refused(node, "a YAML alias refers to a value that contains it (a cycle)")
        if nid not in self.size:
            self.paths[nid] = path
            self.open.add(nid)
            self.size[nid] = self._measure(node, path, depth)
            self.open.discard(nid)
        values, height = self.size[nid]
        if depth + height > MAX_YAML_DEPTH:
            message = f"values are nested more than {MAX_YAML_DEPTH} levels deep (aliases expanded)"
            raise _Refused(node, message)
        return values, height

    def _measure(self, node: yaml.Node, path: tuple[Any, ...], depth: int) -> tuple[int, int]:
        if node.tag in _REFUSED_TAGS:
            raise _Refused(node, f"YAML tag !!{node.tag.rsplit(':', 1)[-1]} is not allowed here")
        if isinstance(node, yaml.ScalarNode):
            return 1 + len(node.value) // 100, 1
        if isinstance(node, yaml.SequenceNode):
            children = [((*path, i), child) for i, child in enumerate(node.value)]
        else:
            self._check_keys(node, path)
            children = []
            for k, v in node.value:
                sub = (*path, k.value if isinstance(k, yaml.ScalarNode) else "?")
                children += [(sub, k), (sub, v)]
        values, height = 1, 1
        for sub, child in children:
            v, h = self.visit(child, sub, depth + 1)
            values, height = values + v, max(height, h + 1)
            if values > MAX_YAML_VALUES:
                raise _Refused(
                    node,
                    f"more than {MAX_YAML_VALUES:,} values once YAML aliases are expanded "
                    "(a 'billion laughs' document?)",
                )
        return values, height

    def _check_keys(self, node: yaml.MappingNode, path: tuple[Any, ...]) -> None:
        seen: dict[Any, yaml.Node] = {}
        for k, _ in node.value:
            if k.tag == _MERGE_TAG or not isinstance(k, yaml.ScalarNode):
                continue  # merged keys may be overridden: that is what merging is for
            try:
                key = self.keys.construct_object(k, deep=True)
            except yaml.YAMLError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _unreadable(k, exc, (*path, k.value)) from None
            if key in seen:
                lines = f"lines {seen[key].start_mark.line + 1} and {k.start_mark.line + 1}"
                raise _Refused(k, f"duplicate key {key!r} ({lines})", (*path, k.value))
            seen[key] = k


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML config safely, keeping the node tree for line numbers.

    Every refusal is a one-line :class:`ConfigError` naming the file and, where there is one, the
    key path and line: unreadable or oversized files, non-UTF-8 bytes, syntax errors, values YAML
    cannot read, duplicate keys, cyclic or exploding aliases, nesting beyond the limit.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(one_line(f"config file not found: {path}")) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(one_line(f"{path}: cannot read the config file ({reason})")) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            one_line(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not a config file?")
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(one_line(
            f"{path}, line {line}: not a UTF-8 text file "
            f"(byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        )) from None  # fmt: skip
    checker = _Checker()
    loader = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is None:
            return None, None
        checker.visit(root, (), 0)
        return loader.construct_document(root), root
    except _Refused as exc:
        where = exc.path if exc.path is not None else checker.paths.get(id(exc.node))
        line = exc.node.start_mark.line + 1
        at = f": {key_path(where)} (line {line})" if where is not None else f", line {line}"
        raise ConfigError(one_line(f"{path}{at}: {exc.message}")) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(one_line(
            f"{path}, line {line}: not a YAML text file "
            f"(control character #x{exc.character:04x})"
        )) from None  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(one_line(f"{path}{where}: invalid YAML ({problem})")) from None
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise ConfigError(one_line(f"{path}: values are nested too deeply")) from None
    finally:
        if loader is not None:
            loader.dispose()


def _resolve_strategy_dir(data: Any, folder: Path) -> None:
    """A relative ``strategy.dir`` names a folder next to the config file, not the cwd."""
    strategy = data.get("strategy") if isinstance(data, dict) else None
    where = strategy.get("dir") if isinstance(strategy, dict) else None
    if isinstance(where, str) and where and "\x00" not in where and not Path(where).is_absolute():
        strategy["dir"] = str(folder / where)


def load_config(path: str | Path) -> RunConfig:
    """Load and validate a run config file (import paths resolved against its folder)."""
    path = Path(path)
    data, root = read_yaml(path)
    _resolve_strategy_dir(data, path.parent)
    cfg = validate_config(data, str(path), root)
    if not cfg.data.imports:
        return cfg
    try:
        imports = tuple(
            spec.model_copy(update={"path": str((path.parent / spec.path).resolve())})
            for spec in cfg.data.imports
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            one_line(f"{path}: data.imports: cannot resolve a path ({exc})")
        ) from None
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"imports": imports})})
