"""Writes need the token; placeholder tokens are refused outside development; no file paths."""

from __future__ import annotations

import logging
from pathlib import Path

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
    with pytest.raises(ConfigError, match="SENTINEL_API_TOKEN is (a placeholder|not set)"):
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
    assert names == {
        "symbol",
        "background",
        "window_days",
        "model_mode",
        "sweep_id",
        "run_id",
        "per_day",
    }  # per_day: a flag (the evaluation's per-day rows)


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


# -- sentinel serve: no real token, no serving (unless loopback and explicitly development) ----
REAL = "a-real-secret-token-0123456789"


@pytest.fixture
def serve_cli(monkeypatch, tmp_path, capsys):
    """``sentinel serve ARGS`` in-process with only ``env`` set: (exit code, stderr lines, runs).

    uvicorn.run is replaced by a recorder, so a start is instant; the working folder is empty
    (no .env) and get_settings reads the given environment afresh.
    """
    import os
    import sys

    import uvicorn

    from cli.main import main
    from sentinel.settings import get_settings

    runs: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
    monkeypatch.chdir(tmp_path)

    def run(env: dict[str, str], *args: str) -> tuple[int, list[str], list[dict]]:
        for name in list(os.environ):
            if name.startswith("SENTINEL_"):
                monkeypatch.delenv(name)
        for k, v in {"SENTINEL_DATA_DIR": str(tmp_path / "data"), **env}.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        db = f"sqlite:///{tmp_path / 'serve.db'}"
        monkeypatch.setattr(sys, "argv", ["sentinel", "--db", db, "serve", "--no-scheduler", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        return code, err, runs

    yield run
    get_settings.cache_clear()


REFUSED = [
    ({}, "127.0.0.1"),  # nothing set: environment is production, no token
    ({}, "0.0.0.0"),
    ({"SENTINEL_API_TOKEN": "changeme"}, "127.0.0.1"),
    ({"SENTINEL_ENVIRONMENT": "development"}, "0.0.0.0"),
    ({"SENTINEL_ENVIRONMENT": "development", "SENTINEL_API_TOKEN": "changeme"}, "0.0.0.0"),
    ({"SENTINEL_ENVIRONMENT": "development", "SENTINEL_API_TOKEN": "changeme"}, "192.168.1.10"),
    ({"SENTINEL_ENVIRONMENT": "production", "SENTINEL_API_TOKEN": "short-token"}, "127.0.0.1"),
    ({"SENTINEL_ENVIRONMENT": "test", "SENTINEL_API_TOKEN": "secret"}, "127.0.0.1"),
]


@pytest.mark.parametrize(("env", "host"), REFUSED)
def test_serve_refuses_to_start_without_a_real_token(serve_cli, tmp_path, env, host):
    code, err, runs = serve_cli(env, "--host", host)
    assert code == 1
    assert len(err) == 1, err
    assert err[0].startswith("error: SENTINEL_API_TOKEN"), err
    assert "refusing to serve" in err[0]
    assert runs == []
    assert not (tmp_path / "serve.db").exists()  # nothing created before the refusal


STARTS = [
    ({"SENTINEL_ENVIRONMENT": "development"}, "127.0.0.1"),
    ({"SENTINEL_ENVIRONMENT": "development", "SENTINEL_API_TOKEN": "changeme"}, "localhost"),
    ({"SENTINEL_API_TOKEN": REAL}, "0.0.0.0"),
    ({"SENTINEL_ENVIRONMENT": "test", "SENTINEL_API_TOKEN": REAL}, "127.0.0.1"),
]


@pytest.mark.parametrize(("env", "host"), STARTS)
def test_serve_starts_with_a_real_token_or_on_loopback_in_development(serve_cli, env, host):
    code, err, runs = serve_cli(env, "--host", host)
    assert code == 0, err
    assert len(runs) == 1 and runs[0]["host"] == host


def test_serve_names_a_bad_environment_value_in_one_line(serve_cli):
    code, err, runs = serve_cli({"SENTINEL_ENVIRONMENT": "dev"})
    assert code == 1 and runs == []
    assert len(err) == 1 and err[0].startswith("error: SENTINEL_ENVIRONMENT: "), err


def test_sentinel_serve_refusal_is_one_line_and_exit_1(tmp_path):
    """The real command in a subprocess: no SENTINEL_* variable, bound to every interface."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    root = Path(__file__).resolve().parents[3]
    env["PYTHONPATH"] = str(root)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    port = str(_free_port())
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "--db", db, "serve", "--host", "0.0.0.0", "--port", port],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "SENTINEL_API_TOKEN is not set" in lines[0]
    assert not (tmp_path / "x.db").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_create_app_refuses_a_placeholder_off_loopback(tmp_path, store):
    settings = make_settings(tmp_path, api_token="changeme", environment="development")
    with pytest.raises(ConfigError, match="refusing to serve on 0.0.0.0"):
        create_app(store, settings, host="0.0.0.0")


def test_placeholder_token_is_accepted_from_loopback_clients_only(tmp_path, store):
    """Development with a placeholder: a request from another machine is refused all the same."""
    from fastapi.testclient import TestClient

    settings = make_settings(tmp_path, api_token="changeme", environment="development")
    app = create_app(store, settings)
    body = {"ml_wavelet_blend_ratio": 0.5}
    auth = {"Authorization": "Bearer changeme"}
    remote = TestClient(app, client=("10.1.2.3", 50000))
    r = remote.post("/api/settings", json=body, headers=auth)
    assert r.status_code == 403
    assert "loopback" in r.json()["detail"]
    assert store.records.get_stored_settings() == {}
    local = TestClient(app, client=("127.0.0.1", 50000))
    assert local.post("/api/settings", json=body, headers=auth).status_code == 200
    assert store.records.get_stored_settings() == body


def test_no_token_configured_means_no_writes(tmp_path, store):
    from fastapi.testclient import TestClient

    settings = make_settings(tmp_path, api_token="", environment="development")
    local = TestClient(create_app(store, settings), client=("127.0.0.1", 50000))
    r = local.post(
        "/api/settings", json={"ml_enabled": False}, headers={"Authorization": "Bearer x"}
    )
    assert r.status_code == 403
    assert "SENTINEL_API_TOKEN" in r.json()["detail"]
    assert store.records.get_stored_settings() == {}
