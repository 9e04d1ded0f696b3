"""Settings come from SENTINEL_* variables; stored ml_* overrides are validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sentinel.errors import ConfigError
from sentinel.settings import Settings, effective_settings


def test_environment_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTINEL_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SENTINEL_ML_WAVELET_BLEND_RATIO", "0.7")
    s = Settings()
    assert s.database_url == "sqlite:///x.db"
    assert s.models_dir == tmp_path / "ml_models"
    assert s.ml_wavelet_blend_ratio == 0.7


def test_stored_overrides_are_validated():
    base = Settings()
    assert effective_settings({"ml_enabled": False}, base).ml_enabled is False
    assert effective_settings({"unrelated": 1}, base) is base
    with pytest.raises(ConfigError, match="ml_wavelet_blend_ratio"):
        effective_settings({"ml_wavelet_blend_ratio": 1.5}, base)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No SENTINEL_* variable and no .env file: only the defaults."""
    import os

    for name in list(os.environ):
        if name.startswith("SENTINEL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_safe(clean_env):
    """No token and not development unless the user says so (``sentinel serve`` then refuses)."""
    s = Settings()
    assert s.environment == "production"
    assert s.api_token == ""
    assert s.max_body_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ml_min_samples_per_symbol", 100_001),
        ("ml_min_samples_per_symbol", 10**29),
        ("ml_min_samples_per_symbol", 9),
        ("ml_prediction_horizon_days", 366),
        ("ml_wavelet_blend_ratio", float("nan")),
        ("ml_wavelet_blend_ratio", float("inf")),
        ("max_body_bytes", 0),
    ],
)
def test_bounds_are_explicit(clean_env, key, value):
    with pytest.raises(ValidationError, match=key):
        Settings(**{key: value})


def test_upper_bound_of_min_samples_is_inclusive(clean_env):
    assert Settings(ml_min_samples_per_symbol=100_000).ml_min_samples_per_symbol == 100_000


def test_a_stored_value_out_of_bounds_is_one_clear_config_error(clean_env):
    """An older version stored it (no upper bound then): every command says which key, in one
    line (a ConfigError, so the CLI exits 1), without repeating the value."""
    with pytest.raises(ConfigError, match="ml_min_samples_per_symbol") as info:
        effective_settings({"ml_min_samples_per_symbol": 10**29}, Settings())
    assert "\n" not in str(info.value) and str(10**29) not in str(info.value)
