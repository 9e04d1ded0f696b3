"""Settings from the environment (prefix ``SENTINEL_``), then the ml_* keys stored by the API.

Precedence, lowest first: defaults here, environment variables / ``.env``, then the ``settings``
table for the ml_* keys changed through ``/api/settings`` (see :func:`effective_settings`).
Pointing any command at another store is one variable: ``SENTINEL_DATABASE_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Keys that the API and web UI may change; persisted in the settings table.
ML_KEYS: tuple[str, ...] = (
    "ml_enabled",
    "ml_wavelet_blend_ratio",
    "ml_retrain_weekly",
    "ml_prediction_horizon_days",
    "ml_min_samples_per_symbol",
)

PLACEHOLDER_TOKENS = {"", "changeme", "change-me", "secret", "token", "placeholder"}


class Settings(BaseSettings):
    """Process-wide settings. Construct through :func:`get_settings` so they are read once."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_", env_file=".env", extra="ignore", validate_default=True
    )

    database_url: str = Field(
        default="sqlite:///sentinel.db",
        description="SQLAlchemy URL of the store; SQLite in the working folder by default.",
    )
    data_dir: Path = Field(
        default=Path("data"), description="Folder for models (data/ml_models) and outputs."
    )
    environment: Literal["development", "production", "test"] = "development"
    api_token: str = Field(default="changeme", description="Bearer token for API writes.")
    timezone: str = Field(default="America/New_York", description="Time zone of the scheduler.")

    ml_enabled: bool = True
    ml_wavelet_blend_ratio: float = Field(default=0.3, ge=0.0, le=1.0)
    ml_retrain_weekly: bool = True
    ml_prediction_horizon_days: int = Field(default=14, ge=1, le=365)
    ml_min_samples_per_symbol: int = Field(default=100, ge=10)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def models_dir(self) -> Path:
        """Where per-symbol models live: ``{data_dir}/ml_models/{symbol}/``."""
        return self.data_dir / "ml_models"

    def ml_values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ML_KEYS}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment once."""
    return Settings()


def effective_settings(stored: dict[str, Any], base: Settings | None = None) -> Settings:
    """``base`` with the ml_* overrides stored in the database applied and validated."""
    base = base or get_settings()
    updates = {k: v for k, v in stored.items() if k in ML_KEYS}
    return Settings.model_validate({**base.model_dump(), **updates}) if updates else base
