"""Policy: scores as of a day -> target weights. YAML names strategies by registry key."""

from strategies.base import PlanContext, Strategy, StrategyParams
from strategies.rules import Momentum, ScoreWeighted, TopN

STRATEGIES: dict[str, type[Strategy]] = {
    TopN.name: TopN,
    ScoreWeighted.name: ScoreWeighted,
    Momentum.name: Momentum,
}

__all__ = [
    "STRATEGIES",
    "Momentum",
    "PlanContext",
    "ScoreWeighted",
    "Strategy",
    "StrategyParams",
    "TopN",
]
