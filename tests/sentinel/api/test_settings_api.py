"""``GET/POST /api/settings``: strict validation, persistence, and effect on what runs use."""

from __future__ import annotations

import pytest

from sentinel.db import Store
from sentinel.settings import ML_KEYS
from tests.sentinel.api.conftest import AUTH


def test_get_returns_the_notes_keys_with_defaults(client):
    r = client.get("/api/settings")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == set(ML_KEYS)
    assert body["ml_wavelet_blend_ratio"] == 0.3
    assert body["ml_prediction_horizon_days"] == 14


def test_post_persists_and_returns_effective_values(client, store):
    r = client.post(
        "/api/settings", json={"ml_enabled": False, "ml_wavelet_blend_ratio": 0.65}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["ml_enabled"] is False
    assert r.json()["ml_wavelet_blend_ratio"] == 0.65
    assert store.records.get_stored_settings() == {
        "ml_enabled": False,
        "ml_wavelet_blend_ratio": 0.65,
    }
    assert client.get("/api/settings").json()["ml_wavelet_blend_ratio"] == 0.65
    # a later partial update keeps the earlier keys
    client.post("/api/settings", json={"ml_min_samples_per_symbol": 40}, headers=AUTH)
    body = client.get("/api/settings").json()
    assert (body["ml_enabled"], body["ml_min_samples_per_symbol"]) == (False, 40)


@pytest.mark.parametrize("ratio", [0.0, 1, 1.0])
def test_blend_ratio_bounds_are_inclusive(client, ratio):
    r = client.post("/api/settings", json={"ml_wavelet_blend_ratio": ratio}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["ml_wavelet_blend_ratio"] == ratio


def test_settings_persist_across_app_instances(tmp_path, make_client):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_client(Store(url))
    r = first.post("/api/settings", json={"ml_wavelet_blend_ratio": 0.8}, headers=AUTH)
    assert r.status_code == 200
    second = make_client(Store(url))  # a new app and a new engine on the same database
    assert second.get("/api/settings").json()["ml_wavelet_blend_ratio"] == 0.8
    assert second.get("/api/ml/status").json()["blend_ratio"] == 0.8


def test_status_and_retrain_settings_follow_the_api(client):
    client.post("/api/settings", json={"ml_prediction_horizon_days": 21}, headers=AUTH)
    assert client.app.state.retrain.settings().ml_prediction_horizon_days == 21
    assert client.get("/api/ml/performance").json()["horizon_days"] == 21


BAD = [
    ({"ml_wavelet_blend_ratio": 1.5}, "less than or equal to 1"),
    ({"ml_wavelet_blend_ratio": -0.1}, "greater than or equal to 0"),
    ({"ml_wavelet_blend_ratio": "0.3"}, "valid number"),
    ({"ml_enabled": "true"}, "valid boolean"),
    ({"ml_enabled": 1}, "valid boolean"),
    ({"ml_prediction_horizon_days": 0}, "greater than or equal to 1"),
    ({"ml_prediction_horizon_days": 366}, "less than or equal to 365"),
    ({"ml_prediction_horizon_days": 14.5}, "valid integer"),
    ({"ml_min_samples_per_symbol": 5}, "greater than or equal to 10"),
    ({"ml_min_samples_per_symbol": 100_001}, "less than or equal to 100000"),
    ({"ml_blend": 0.3}, "Extra inputs are not permitted"),
    ({"database_url": "sqlite:////etc/passwd"}, "Extra inputs are not permitted"),
    ({}, "no setting given"),
    ({"ml_enabled": None}, "null is not a value for ml_enabled"),
    ([0.3], "valid dictionary"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_values_are_422_with_a_clear_message_and_nothing_stored(client, store, body, message):
    r = client.post("/api/settings", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert message in r.text
    if isinstance(body, dict) and len(body) == 1:  # the answer names the field at fault
        assert next(iter(body)) in r.text
    assert store.records.get_stored_settings() == {}


def test_malformed_json_is_422_and_nothing_stored(client, store):
    r = client.post(
        "/api/settings",
        content=b'{"ml_wavelet_blend_ratio": 0.4',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert "JSON" in r.text
    assert store.records.get_stored_settings() == {}
    assert client.get("/api/settings").status_code == 200  # the service keeps running


def test_one_bad_key_rejects_the_whole_update(client, store):
    r = client.post(
        "/api/settings", json={"ml_enabled": False, "ml_wavelet_blend_ratio": 2}, headers=AUTH
    )
    assert r.status_code == 422
    assert store.records.get_stored_settings() == {}
