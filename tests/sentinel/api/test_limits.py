"""Bad input is a 4xx, never a 500: bodies are capped before they are read (413), 422s name the
field and the problem without echoing the body, non-finite numbers and out-of-range ids are
refused, and settings stored by an older version outside today's bounds are reported, not a 500."""

from __future__ import annotations

import asyncio
import json

import pytest

from sentinel.api import create_app
from tests.sentinel.api.conftest import AUTH, TOKEN, make_settings

MB = 1024 * 1024
JSON = {**AUTH, "Content-Type": "application/json"}
CHUNK = 64 * 1024


def _asgi_post(app, *, content_length: int | None, token: bool, stop_after: int = 8 * MB):
    """POST /api/settings straight into the ASGI app with a body that never ends on its own.

    Returns (status, response body, bytes of the request body the app read). The body is
    ``content_length`` bytes (or endless and chunked when None); reading stops at ``stop_after``
    with a disconnect, so an app that reads everything fails the test instead of hanging.
    """
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    if token:
        headers.append((b"authorization", f"Bearer {TOKEN}".encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/settings", "raw_path": b"/api/settings",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }  # fmt: skip
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        if read >= stop_after:
            return {"type": "http.disconnect"}
        left = stop_after if content_length is None else content_length
        n = min(CHUNK, left - read)
        read += n
        more = content_length is None or read < content_length
        return {"type": "http.request", "body": b"x" * n, "more_body": more}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"] if start else None), body, read


@pytest.mark.parametrize("token", [False, True])
def test_a_300_mb_body_is_refused_without_reading_it(tmp_path, store, token):
    app = create_app(store, make_settings(tmp_path))
    status, body, read = _asgi_post(app, content_length=300 * MB, token=token)
    assert status == 413
    assert read == 0  # the Content-Length alone decides
    assert "1048576" in body.decode()  # the limit is named
    assert store.records.get_stored_settings() == {}


@pytest.mark.parametrize("token", [False, True])
def test_a_chunked_body_is_cut_at_the_limit(tmp_path, store, token):
    app = create_app(store, make_settings(tmp_path))
    status, _, read = _asgi_post(app, content_length=None, token=token)
    assert status == 413
    assert read <= MB + CHUNK  # stopped as soon as the limit was passed
    assert store.records.get_stored_settings() == {}


def test_the_limit_is_a_setting(tmp_path, store, make_client):
    from fastapi.testclient import TestClient

    app = create_app(store, make_settings(tmp_path, max_body_bytes=4096))
    client = TestClient(app)
    pad = " " * 5000
    r = client.post("/api/settings", content=f'{{"ml_enabled": false}}{pad}', headers=JSON)
    assert r.status_code == 413
    assert "SENTINEL_MAX_BODY_BYTES" in r.json()["detail"]
    r = client.post("/api/settings", content='{"ml_enabled": false}', headers=JSON)
    assert r.status_code == 200
    assert store.records.get_stored_settings() == {"ml_enabled": False}


def test_a_large_value_is_not_echoed_in_the_422(client, store):
    secret = "secret-value-" + "x" * 500_000
    r = client.post("/api/settings", json={"ml_wavelet_blend_ratio": secret}, headers=AUTH)
    assert r.status_code == 422
    assert "secret-value" not in r.text
    assert len(r.content) < 2048
    assert store.records.get_stored_settings() == {}


def test_422_items_are_field_and_message_only(client):
    r = client.post(
        "/api/settings",
        json={"ml_wavelet_blend_ratio": "0.3", "ml_enabled": "yes-please"},
        headers=AUTH,
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert {tuple(sorted(d)) for d in detail} == {("loc", "msg")}
    assert {d["loc"][-1] for d in detail} == {"ml_wavelet_blend_ratio", "ml_enabled"}
    assert "yes-please" not in r.text


def test_many_unknown_keys_give_a_bounded_422(client, store):
    body = {f"key_{i}_" + "k" * 200: i for i in range(2000)}
    r = client.post("/api/settings", json=body, headers=AUTH)
    assert r.status_code == 422
    assert len(r.content) < 8192
    assert "more errors" in r.text
    assert store.records.get_stored_settings() == {}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"ml_wavelet_blend_ratio": NaN}',
        b'{"ml_wavelet_blend_ratio": Infinity}',
        b'{"ml_wavelet_blend_ratio": -Infinity}',
        b'{"ml_wavelet_blend_ratio": 1e400}',
        b'{"ml_min_samples_per_symbol": 100000000000000000000000000000}',
        b'{"ml_min_samples_per_symbol": 1e29}',
        b'{"ml_min_samples_per_symbol": 100001}',
        b'{"ml_prediction_horizon_days": 9223372036854775808}',
        b'{"ml_enabled": false, "ml_wavelet_blend_ratio": NaN}',
    ],
)
def test_non_finite_and_out_of_range_values_are_422(store, api_settings, raw):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(store, api_settings), raise_server_exceptions=False)
    r = client.post("/api/settings", content=raw, headers=JSON)
    assert r.status_code == 422, r.text
    assert store.records.get_stored_settings() == {}
    assert client.get("/api/settings").json()["ml_min_samples_per_symbol"] == 100


def test_the_upper_bound_of_min_samples_is_accepted(client, store):
    r = client.post("/api/settings", json={"ml_min_samples_per_symbol": 100_000}, headers=AUTH)
    assert r.status_code == 200
    assert store.records.get_stored_settings() == {"ml_min_samples_per_symbol": 100_000}


@pytest.mark.parametrize("run_id", ["9223372036854775808", "99999999999999999999999", "0", "-1"])
def test_run_ids_out_of_range_are_4xx(store, api_settings, run_id):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(store, api_settings), raise_server_exceptions=False)
    r = client.get(f"/api/runs/{run_id}")
    assert r.status_code in (404, 422), r.text


def test_the_largest_run_id_is_a_404(client):
    assert client.get("/api/runs/9223372036854775807").status_code == 404


def test_settings_stored_out_of_bounds_are_reported_and_can_be_fixed(client, store):
    """A value an older version accepted (no upper bound then) is a clear 409, not a 500."""
    store.records.set_settings({"ml_min_samples_per_symbol": 10**29})
    r = client.get("/api/settings")
    assert r.status_code == 409
    assert "ml_min_samples_per_symbol" in r.json()["detail"]
    assert str(10**29) not in r.text
    r = client.post("/api/settings", json={"ml_min_samples_per_symbol": 200}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert client.get("/api/settings").json()["ml_min_samples_per_symbol"] == 200


def test_json_decode_errors_do_not_echo_the_document(client, store):
    doc = '{"ml_wavelet_blend_ratio": 0.4, "note": "' + "s" * 10_000 + '"'
    r = client.post("/api/settings", content=doc, headers=JSON)
    assert r.status_code == 422
    assert "JSON" in r.text
    assert "sss" not in r.text
    assert len(r.content) < 1024
    assert store.records.get_stored_settings() == {}
    assert json.loads(r.text)["detail"][0]["loc"][0] == "body"


def test_a_lone_surrogate_in_a_key_is_a_422_not_a_500(store, api_settings):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(store, api_settings), raise_server_exceptions=False)
    r = client.post("/api/settings", content=b'{"\\ud800x": 1}', headers=JSON)
    assert r.status_code == 422, r.text
    assert store.records.get_stored_settings() == {}
