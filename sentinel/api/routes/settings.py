"""``GET/POST /api/settings``: the ml_* keys, validated, persisted in the settings table.

Values are strict (``"true"`` is not a boolean, ``"0.3"`` not a number), finite (JSON ``NaN`` and
``Infinity`` are refused) and within the bounds of :mod:`sentinel.settings` (the same types), and
unknown keys are rejected, so a typo is a 422 instead of a setting silently ignored. The merged
result is validated again with :class:`~sentinel.settings.Settings` before anything is stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, model_validator

from sentinel.api.deps import (
    BaseSettingsDep,
    EffectiveSettingsDep,
    StoreDep,
    TokenDep,
    checked_settings,
)
from sentinel.settings import ML_KEYS, BlendRatio, HorizonDays, MinSamples

router = APIRouter(prefix="/api/settings", tags=["settings"])


class MLSettings(BaseModel):
    """The effective ml_* settings: environment, then the values stored through this API."""

    ml_enabled: bool
    ml_wavelet_blend_ratio: float
    ml_retrain_weekly: bool
    ml_prediction_horizon_days: int
    ml_min_samples_per_symbol: int


class MLSettingsUpdate(BaseModel):
    """Any subset of the ml_* keys; what is left out keeps its value."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"example": {"ml_enabled": True, "ml_wavelet_blend_ratio": 0.3}},
    )

    ml_enabled: bool | None = None
    ml_wavelet_blend_ratio: BlendRatio | None = None
    ml_retrain_weekly: bool | None = None
    ml_prediction_horizon_days: HorizonDays | None = None
    ml_min_samples_per_symbol: MinSamples | None = None

    @model_validator(mode="after")
    def _not_empty_or_null(self) -> MLSettingsUpdate:
        given = self.model_fields_set
        if not given:
            raise ValueError(f"no setting given; allowed keys: {', '.join(ML_KEYS)}")
        nulls = sorted(k for k in given if getattr(self, k) is None)
        if nulls:
            raise ValueError(f"null is not a value for {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def _ml_values(s: Any) -> dict[str, Any]:
    return {k: getattr(s, k) for k in ML_KEYS}


@router.get("", response_model=MLSettings, summary="Effective ML settings")
async def read_settings(settings: EffectiveSettingsDep) -> dict[str, Any]:
    return _ml_values(settings)


@router.post(
    "",
    response_model=MLSettings,
    dependencies=[TokenDep],
    summary="Change ML settings (token required)",
    responses={
        401: {"description": "no token"},
        403: {"description": "wrong token"},
        409: {"description": "a stored value is out of bounds (send a valid one for that key)"},
        413: {"description": "body larger than SENTINEL_MAX_BODY_BYTES"},
        422: {"description": "invalid value: the field and the problem (never the value)"},
    },
)
def write_settings(
    update: MLSettingsUpdate, store: StoreDep, base: BaseSettingsDep
) -> dict[str, Any]:
    """Validate the merged settings, then persist the given keys; returns the effective values.

    The next backtest, live step and retrain read them (``effective_settings``).
    """
    changes = update.changes()
    settings = checked_settings({**store.records.get_stored_settings(), **changes}, base)
    store.records.set_settings(changes)
    return _ml_values(settings)
