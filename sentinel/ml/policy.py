"""How a run uses ML: one frozen policy, built from the settings (the one home of each default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sentinel.settings import Settings

Mode = Literal["walk_forward", "current", "off"]
#: NN epoch bound of walk-forward retrains (not a stored setting: a run-config knob).
WALK_FORWARD_MAX_EPOCHS = 60


@dataclass(frozen=True)
class MLPolicy:
    """The ML knobs the planner, the backfill and the retrain job read.

    It has no defaults of its own: :meth:`from_settings` fills what a caller leaves out from the
    settings (environment, then the values stored through the API), so a default lives in one
    place (``sentinel.settings.Settings``).
    """

    enabled: bool
    blend_ratio: float
    mode: Mode
    horizon_days: int
    min_samples: int
    max_epochs: int
    seed: int
    model: str  # ml.model: per_symbol | pooled | hierarchical
    target: str  # ml.target: return | excess | rank
    label_from: str  # ml.label_from: close | next_open (a run-config knob, no setting)
    select_every: int = 1  # ml.select_every: epoch/tree counts re-picked every N-th retrain
    warm_start: float = 0.0  # ml.warm_start: refits between picks resume the last networks

    @classmethod
    def from_settings(cls, settings: Settings, **given: Any) -> MLPolicy:
        """The policy for ``settings``, with any key in ``given`` that is not None taking over."""
        values: dict[str, Any] = {
            "enabled": settings.ml_enabled,
            "blend_ratio": settings.ml_wavelet_blend_ratio,
            "mode": "walk_forward",
            "horizon_days": settings.ml_prediction_horizon_days,
            "min_samples": settings.ml_min_samples_per_symbol,
            "max_epochs": WALK_FORWARD_MAX_EPOCHS,
            "seed": 0,
            "model": settings.ml_model,
            "target": settings.ml_target,
            "label_from": "close",
            "select_every": 1,
            "warm_start": 0.0,
        }
        unknown = set(given) - set(values)
        if unknown:
            raise TypeError(f"MLPolicy has no key(s) {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)

    @property
    def active(self) -> bool:
        """ML takes part in the scores (enabled and not mode 'off')."""
        return self.enabled and self.mode != "off"
