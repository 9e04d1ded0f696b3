"""Settings come from SENTINEL_* variables; stored ml_* overrides are validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
    with pytest.raises(ValidationError, match="ml_wavelet_blend_ratio"):
        effective_settings({"ml_wavelet_blend_ratio": 1.5}, base)
