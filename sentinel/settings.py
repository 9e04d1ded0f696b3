"""Settings from the environment (prefix ``SENTINEL_``), then the ml_* keys stored by the API.

Precedence, lowest first: defaults here, environment variables / ``.env``, then the ``settings``
table for the ml_* keys changed through ``/api/settings`` (see :func:`effective_settings`).
Pointing any command at another store is one variable: ``SENTINEL_DATABASE_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sentinel.errors import ConfigError

#: Keys that the API and web UI may change; persisted in the settings table.
ML_KEYS: tuple[str, ...] = (
    "ml_enabled",
    "ml_wavelet_blend_ratio",
    "ml_retrain_weekly",
    "ml_prediction_horizon_days",
    "ml_min_samples_per_symbol",
)

PLACEHOLDER_TOKENS = {"", "changeme", "change-me", "secret", "token", "placeholder"}
#: A token shorter than this is not a secret (``secrets.token_urlsafe(32)`` gives 43 characters).
MIN_TOKEN_LENGTH = 16

# The bounds of the ml_* keys, in one place: Settings below and the API's update model both use
# these types, so the environment, the database and POST /api/settings accept the same values.
#: 0 = pure wavelet score, 1 = pure ML prediction; a finite number (no NaN / Infinity).
BlendRatio = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
#: Label horizon in calendar days.
HorizonDays = Annotated[int, Field(ge=1, le=365)]
#: Training samples a symbol needs before it gets a model (below it: wavelet score alone).
MinSamples = Annotated[int, Field(ge=10, le=100_000)]


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
    environment: Literal["development", "production", "test"] = Field(
        default="production",
        description="Only an explicit 'development' lets `sentinel serve` run on loopback "
        "without a real API token.",
    )
    api_token: str = Field(
        default="",
        description=f"Bearer token for API writes (at least {MIN_TOKEN_LENGTH} characters); "
        "unset by default, and `sentinel serve` refuses to start without one.",
    )
    timezone: str = Field(default="America/New_York", description="Time zone of the scheduler.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body the API reads; a larger one is a 413, unread.",
    )

    ml_enabled: bool = True
    ml_wavelet_blend_ratio: BlendRatio = 0.3
    ml_retrain_weekly: bool = True
    ml_prediction_horizon_days: HorizonDays = 14
    ml_min_samples_per_symbol: MinSamples = 100
    # model kind and training target (sentinel.ml.pooled); environment only, not in ML_KEYS
    ml_model: Literal["per_symbol", "pooled", "hierarchical"] = "per_symbol"
    ml_target: Literal["return", "excess", "rank"] = "return"

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


def token_problem(token: str) -> str | None:
    """Why ``token`` is not a real API token (unset, a placeholder, too short), or None."""
    t = token.strip()
    if not t:
        return "SENTINEL_API_TOKEN is not set"
    if t.lower() in PLACEHOLDER_TOKENS:
        return f"SENTINEL_API_TOKEN is a placeholder ({token!r})"
    if len(t) < MIN_TOKEN_LENGTH:
        return f"SENTINEL_API_TOKEN is too short ({len(t)} characters, at least {MIN_TOKEN_LENGTH})"
    return None


def ml_bounds() -> dict[str, tuple[Any, Any]]:
    """``key -> (lowest, highest)`` of the numeric ml_* settings, read from the fields above."""
    bounds = {}
    for key in ML_KEYS:
        lo = hi = None
        for m in Settings.model_fields[key].metadata:
            lo, hi = getattr(m, "ge", lo), getattr(m, "le", hi)
        if lo is not None or hi is not None:
            bounds[key] = (lo, hi)
    return bounds


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment once."""
    return Settings()


class StoredSettingsError(ConfigError):
    """A value in the settings table is outside today's bounds (an older version stored it)."""


def effective_settings(stored: dict[str, Any], base: Settings | None = None) -> Settings:
    """``base`` with the ml_* overrides stored in the database applied and validated.

    A stored value outside the bounds is a :class:`StoredSettingsError` naming the key (not the
    value); saving a valid value for that key repairs it.
    """
    base = base or get_settings()
    updates = {k: v for k, v in stored.items() if k in ML_KEYS}
    if not updates:
        return base
    try:
        return Settings.model_validate({**base.model_dump(), **updates})
    except ValidationError as exc:
        why = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors() if e["loc"])
        raise StoredSettingsError(
            f"stored setting out of bounds ({why}); save a valid value for it "
            "(POST /api/settings or the web UI)"
        ) from None
