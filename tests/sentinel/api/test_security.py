"""Writes need the token; placeholder tokens are refused outside development; no file paths."""

from __future__ import annotations

import logging

import pytest

from sentinel.api import create_app
from sentinel.errors import ConfigError
from sentinel.settings import PLACEHOLDER_TOKENS
from tests.sentinel.api.conftest import AUTH, make_settings

WRITES = [
    ("/api/settings", {"ml_wavelet_blend_ratio": 0.5}),
    ("/api/ml/retrain", None),
    ("/api/ml/retrain?background=true", None),
    ("/api/ml/retrain/DAA", None),
]


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_writes_without_a_token_are_401(demo_store, make_client, path, body):
    client = make_client(demo_store)
    r = client.post(path, json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]
    assert demo_store.records.get_stored_settings() == {}
    assert client.app.state.retrain.status()["state"] == "idle"


@pytest.mark.parametrize(("path", "body"), WRITES)
@pytest.mark.parametrize(
    "header", ["Bearer wrong-token", "Bearer test-token-012345678", "Basic dGVzdA==", "Bearer"]
)
def test_writes_with_a_wrong_token_are_refused(demo_store, make_client, path, body, header):
    client = make_client(demo_store)
    r = client.post(path, json=body, headers={"Authorization": header})
    assert r.status_code in (401, 403)
    if header.startswith("Bearer "):
        assert r.status_code == 403
        assert r.json()["detail"] == "wrong API token"
    assert demo_store.records.get_stored_settings() == {}
    assert client.app.state.retrain.status()["state"] == "idle"


def test_reads_need_no_token(client):
    for path in ("/api/settings", "/api/ml/status", "/api/ml/models", "/api/runs", "/"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("token", sorted(PLACEHOLDER_TOKENS) + ["ChangeMe"])
@pytest.mark.parametrize("environment", ["production", "test"])
def test_placeholder_token_is_refused_outside_development(tmp_path, store, token, environment):
    settings = make_settings(tmp_path, api_token=token, environment=environment)
    with pytest.raises(ConfigError, match="SENTINEL_API_TOKEN is a placeholder"):
        create_app(store, settings)


def test_placeholder_token_only_warns_in_development(tmp_path, store, caplog):
    settings = make_settings(tmp_path, api_token="changeme", environment="development")
    with caplog.at_level(logging.WARNING, logger="sentinel.api.main"):
        app = create_app(store, settings)
    assert app is not None
    assert "placeholder" in caplog.text and "development" in caplog.text


def test_no_endpoint_takes_a_file_path(client):
    """Every parameter of every operation is a symbol, an id, a flag or a number."""
    spec = client.get("/openapi.json").json()
    names = set()
    for ops in spec["paths"].values():
        for op in ops.values():
            for p in op.get("parameters", []):
                names.add(p["name"])
                assert p["schema"].get("format") not in ("path", "uri", "binary")
    assert names == {"symbol", "background", "window_days", "model_mode", "sweep_id", "run_id"}


@pytest.mark.parametrize(
    "symbol", [".hidden", "..", "a b", "x" * 33, "%00ab", "..%2F..%2Fetc%2Fpasswd", "-rf"]
)
def test_symbols_are_validated_before_any_lookup(demo_store, make_client, symbol):
    client = make_client(demo_store)
    assert client.get(f"/api/ml/models/{symbol}").status_code in (404, 422)
    r = client.post(f"/api/ml/retrain/{symbol}", headers=AUTH)
    assert r.status_code in (404, 405, 422)
    assert client.app.state.retrain.status()["state"] == "idle"


def test_static_files_cannot_escape_their_folder(client):
    for path in ("/static/../main.py", "/static/..%2Fmain.py", "/static/%2e%2e/deps.py"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "create_app" not in r.text


def test_serve_binds_loopback_by_default():
    import inspect

    from cli.main import serve as serve_cmd
    from sentinel.api.main import _is_loopback, serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve_cmd).parameters["host"].default == "127.0.0.1"
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0")
