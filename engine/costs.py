"""What an order costs beyond its price, and how much of it the market can take.

Two slippage models (``costs.model``):

* ``fixed``: ``slippage_bps`` of the price, whatever the size (a small book's half spread);
* ``sqrt_impact``: the fixed bps plus the square-root market-impact law
  ``impact_coef * sigma * sqrt(Q / ADV)`` (Almgren et al. 2005; Toth et al. 2011), with ``sigma``
  the daily volatility of close-to-close log returns and ``ADV`` the average daily volume, both
  over the ``adv_days`` bars before the fill day (known when the order was decided). A
  ten-billion book moving a stock's whole daily volume pays ~``impact_coef * sigma``; a small
  one pays about the fixed bps.

``participation_cap`` limits an order to that fraction of the fill day's volume; the rest is
cancelled or carried to the next day (``on_cap``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from engine.config import CostsConfig


@dataclass(frozen=True)
class Liquidity:
    """One symbol's liquidity at a fill: the day's volume, and ADV and volatility before it."""

    volume: float | None = None
    adv: float | None = None
    sigma: float | None = None


NO_LIQUIDITY = Liquidity()


def liquidity_arrays(volume: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ADV and daily volatility per column from the bars before a day.

    ``volume``: the last N rows before the day (N x symbols); ``close``: the last N + 1 rows.
    Missing bars (NaN) are skipped; a symbol with fewer than two returns has NaN volatility.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: a symbol not listed
        adv = np.nanmean(volume, axis=0) if len(volume) else np.full(volume.shape[1], np.nan)
        rets = np.diff(np.log(close), axis=0)
        sigma = np.full(close.shape[1], np.nan)
        if len(rets) > 1:
            sigma = np.nanstd(rets, axis=0, ddof=1)
        sigma[np.sum(~np.isnan(rets), axis=0) < 2] = np.nan
    return adv, sigma


class CostModel:
    """Slippage and the participation cap of one run's ``costs`` config."""

    def __init__(self, costs: CostsConfig):
        self.costs = costs
        self.needs_liquidity = costs.model == "sqrt_impact" or costs.participation_cap is not None

    def slippage(self, quantity: float, liq: Liquidity) -> float:
        """The fraction of the price an order of ``quantity`` shares pays (always >= 0)."""
        rate = self.costs.slippage_bps / 1e4
        if self.costs.model != "sqrt_impact":
            return rate
        adv, sigma = liq.adv, liq.sigma
        if not adv or adv <= 0 or sigma is None or not math.isfinite(sigma):
            return rate  # no history yet: the fixed part only
        return rate + self.costs.impact_coef * sigma * math.sqrt(abs(quantity) / adv)

    def cap(self, quantity: float, liq: Liquidity) -> float:
        """The part of ``quantity`` (> 0, shares) the day's volume allows (the whole without a
        cap, or when the day's volume is unknown)."""
        share = self.costs.participation_cap
        if share is None or liq.volume is None or not math.isfinite(liq.volume):
            return quantity
        most = max(liq.volume, 0.0) * share
        if not self.costs.fractional:
            most = math.floor(most)
        return min(quantity, most)


def capped_summary(costs: CostsConfig, capped: list) -> str:
    """One line for the report: how many orders the participation cap cut, and what became of
    the rest. ``capped``: the broker's ``(day, order, filled, over)`` records."""
    over = sum(c[3] for c in capped)
    fate = "carried to the next day" if costs.on_cap == "carry" else "cancelled"
    first = capped[0]
    return (
        f"participation cap {costs.participation_cap:.2%} of the day's volume cut "
        f"{len(capped)} order(s) (first {first[1].symbol} on {first[0]}); {over:,.0f} share(s) "
        f"over the cap were {fate}"
    )
