"""Policy: scores as of a day -> target weights. YAML names a strategy by a built-in key, a
``package.module:Class`` path, a class in the user folder, or an installed entry point
(:mod:`strategies.registry`)."""

from strategies.base import PlanContext, Strategy, StrategyParams
from strategies.registry import BUILTIN, StrategyLookupError, check_strategy_class, resolve
from strategies.rules import Momentum, ScoreWeighted, TopN

#: The built-in strategies by key (plug-ins are found by :func:`strategies.registry.resolve`).
STRATEGIES: dict[str, type[Strategy]] = BUILTIN

__all__ = [
    "STRATEGIES",
    "Momentum",
    "PlanContext",
    "ScoreWeighted",
    "Strategy",
    "StrategyLookupError",
    "StrategyParams",
    "TopN",
    "check_strategy_class",
    "resolve",
]
