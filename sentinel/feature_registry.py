"""Named ML features: the 20 built-ins plus features you register, chosen per run by name.

A run's ``ml.features`` is a list of names; the models get one input per resulting feature, in
that order, and record the names so a model is never fed columns it was not trained on. A name is

- ``default``: the 20 features of :mod:`sentinel.ml_features`, in their documented order (the
  default list is just ``[default]``, so the default models are unchanged);
- an extra built-in registered here (``return_120d``); :func:`feature_frame` also takes one of
  the 20 by name (``rsi_14``), but a run's list must start with ``default`` (:func:`run_features`);
- ``package.module:function``: a function of the bars, or a :class:`Feature` made by
  :func:`feature` (the plug-in route, as qlib and freqtrade let a config point at user code);
- a name an installed package offers in the entry-point group ``sentinel.features``.

A plug-in feature is ``fn(bars) -> Series``: ``bars`` is the symbol's cleaned daily OHLCV frame
(:func:`sentinel.ml_features.clean_price_frame`: date index, open/high/low/close/volume) and the
result holds one value per row. It must be causal: the value on day t may use rows up to t only
(rolling windows and ``shift(k)`` with k >= 0 are; ``shift(-1)``, centred windows and whole-column
statistics are not). ``tests/sentinel/test_feature_registry.py`` checks every registered feature
by perturbing the bars after t. NaN and infinity become the feature's ``default``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

import numpy as np
import pandas as pd

from sentinel.ml_features import (
    DEFAULT_FEATURES,
    FEATURE_NAMES,
    clean_price_frame,
    compute_feature_matrix,
)
from sentinel.plugins import import_reference

#: The name standing for the 20 built-in features.
DEFAULT = "default"
#: Entry-point group an installed package uses to offer features by name.
ENTRY_POINT_GROUP = "sentinel.features"

FeatureFn = Callable[[pd.DataFrame], "pd.Series | np.ndarray"]


class FeatureLookupError(ValueError):
    """A feature name that resolves to nothing usable (one line; a config shows its key/line)."""


@dataclass(frozen=True)
class Feature:
    """A named causal function of a symbol's bars; ``default`` replaces NaN / inf."""

    name: str
    fn: FeatureFn
    default: float = 0.0
    doc: str = ""

    def __call__(self, bars: pd.DataFrame) -> pd.Series:
        return self.fn(bars)


def feature(name: str | None = None, *, default: float = 0.0) -> Callable[[FeatureFn], Feature]:
    """Decorator turning ``fn(bars) -> Series`` into a :class:`Feature` (name: the function's)."""

    def wrap(fn: FeatureFn) -> Feature:
        return Feature(name or fn.__name__, fn, float(default), inspect.getdoc(fn) or "")

    return wrap


# -- extra built-ins (not in the default 20: add them with ml.features) ---------------------------
@feature("return_120d")
def _return_120d(bars: pd.DataFrame) -> pd.Series:
    """close_T / close_{T-120 rows} - 1: six-month momentum."""
    return bars["close"] / bars["close"].shift(120) - 1.0


@feature("drawdown_252d")
def _drawdown_252d(bars: pd.DataFrame) -> pd.Series:
    """close_T / max(close over the last 252 rows) - 1 (<= 0): distance from the yearly high."""
    return bars["close"] / bars["close"].rolling(252, min_periods=1).max() - 1.0


@feature("range_20d", default=0.02)
def _range_20d(bars: pd.DataFrame) -> pd.Series:
    """Mean of (high - low) / close over the last 20 rows: a daily range without the ATR's EMA."""
    return ((bars["high"] - bars["low"]) / bars["close"]).rolling(20, min_periods=20).mean()


EXTRA: dict[str, Feature] = {f.name: f for f in (_return_120d, _drawdown_252d, _range_20d)}


def builtin_names() -> list[str]:
    """Every built-in name: the 20 defaults, then the extras."""
    return [*FEATURE_NAMES, *EXTRA]


def _check(obj: object, ref: str) -> Feature:
    if isinstance(obj, Feature):
        return obj if obj.name == ref else Feature(ref, obj.fn, obj.default, obj.doc)
    if callable(obj) and not inspect.isclass(obj):
        return Feature(ref, obj, 0.0, inspect.getdoc(obj) or "")  # type: ignore[arg-type]
    raise FeatureLookupError(f"{ref!r} is {obj!r}, not a function of the bars nor a Feature")


def _from_import_path(ref: str) -> Feature:
    return _check(import_reference(ref, "function", FeatureLookupError), ref)


def _from_entry_point(name: str) -> Feature | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return _check(ep.load(), name)
            except FeatureLookupError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken plug-in: one clear line
                raise FeatureLookupError(
                    f"feature entry point {name!r} ({ep.value}) failed to load "
                    f"({type(exc).__name__}: {exc})"
                ) from None
    return None


def resolve(name: str) -> Feature | None:
    """The extra :class:`Feature` for ``name``; None for one of the 20 defaults."""
    if name in DEFAULT_FEATURES:
        return None
    if name in EXTRA:
        return EXTRA[name]
    if ":" in name:
        return _from_import_path(name)
    found = _from_entry_point(name)
    if found is not None:
        return found
    installed = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
    raise FeatureLookupError(
        f"unknown feature {name!r}; available: {DEFAULT} (the 20 built-ins), "
        f"{', '.join(EXTRA)}{''.join(', ' + n for n in installed)}, or "
        "'package.module:function'"
    )


def expand(spec: Iterable[str]) -> list[str]:
    """The feature names a spec stands for (``default`` expanded), checked and without repeats."""
    names: list[str] = []
    for item in spec:
        if not isinstance(item, str) or not item:
            raise FeatureLookupError(f"a feature name must be a non-empty string, not {item!r}")
        for name in FEATURE_NAMES if item == DEFAULT else [item]:
            if name in names:
                raise FeatureLookupError(f"feature {name!r} is listed twice")
            resolve(name)
            names.append(name)
    if not names:
        raise FeatureLookupError(f"no features: list at least one (e.g. [{DEFAULT}])")
    return names


def run_features(spec: Sequence[str]) -> list[str]:
    """A run's model inputs: ``default`` first (the baselines and stored samples are the 20),
    then the added features; a one-line error otherwise."""
    if not spec or spec[0] != DEFAULT:
        raise FeatureLookupError(
            f"ml.features must start with {DEFAULT!r} (the 20 built-ins) and add features after "
            f"it, e.g. [{DEFAULT}, return_120d]; got {list(spec)}"
        )
    return expand(spec)


def is_default(names: Sequence[str]) -> bool:
    """True when ``names`` are exactly the 20 defaults in order (the stored samples' columns)."""
    return list(names) == FEATURE_NAMES


def _shown(names: Sequence[str]) -> str:
    names = list(names)
    n = len(FEATURE_NAMES)
    if names[:n] == FEATURE_NAMES:
        names = [DEFAULT, *names[n:]]
    text = ", ".join(names)
    return text if len(text) <= 120 else text[:117] + "..."


def mismatch(trained: Sequence[str] | None, wanted: Sequence[str]) -> str | None:
    """Why a model trained on ``trained`` cannot take ``wanted`` as inputs (None: it can)."""
    trained = list(trained or [])
    if trained == list(wanted):
        return None
    return (
        f"model trained with features [{_shown(trained)}] ({len(trained)} inputs) but this run "
        f"uses [{_shown(wanted)}] ({len(wanted)}); retrain it with the run's ml.features"
    )


def extra_feature_frame(prices: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The non-default features of ``names`` for every cleaned row of ``prices`` (date x name).

    Rows are those of :func:`~sentinel.ml_features.compute_feature_matrix` (the cleaned dates),
    so the columns line up with the default matrix; NaN / inf take each feature's default.
    """
    bars = clean_price_frame(prices)
    extras = [(n, f) for n in names if (f := resolve(n)) is not None]
    out = pd.DataFrame(index=bars.index)
    for name, feat in extras:
        values = np.asarray(feat(bars), dtype=np.float64).reshape(-1)
        if len(values) != len(bars):
            raise FeatureLookupError(
                f"feature {name!r} returned {len(values)} values for {len(bars)} bars; one per "
                "bar is needed"
            )
        out[name] = np.where(np.isfinite(values), values, feat.default)
    return out


def select_features(
    default_matrix: pd.DataFrame, prices: pd.DataFrame, names: Sequence[str]
) -> pd.DataFrame:
    """The run's feature matrix: columns ``names`` from the default matrix and the extras."""
    if is_default(names):
        return default_matrix
    extras = extra_feature_frame(prices, names)
    extras.index = default_matrix.index
    both = pd.concat([default_matrix, extras], axis=1)
    return both[list(names)]


def feature_frame(prices: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``names`` for every bar of one symbol, from its bars alone (no benchmark, sentiment or
    sector: those defaults then hold their neutral values). For checks and guides; runs use
    :class:`~sentinel.ml.dataset.FeatureBook`."""
    names = expand(names)
    if not any(n in DEFAULT_FEATURES for n in names):  # extras only: skip the 20
        return extra_feature_frame(prices, names)[names].rename_axis("date")
    return select_features(compute_feature_matrix(prices), prices, names)
