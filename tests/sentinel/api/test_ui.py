"""The web UI is served by the app: the page, its script and plotly.js, all without a CDN."""

from __future__ import annotations

import re


def test_index_has_the_ml_configuration_and_tables(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for element_id in (
        "ml_enabled", "ml_wavelet_blend_ratio", "blend_number", "ml_retrain_weekly",
        "ml_prediction_horizon_days", "ml_min_samples_per_symbol", "save_settings", "api_token",
        "retrain_all", "models_table", "runs_table", "sweeps_table", "run_chart", "sweep_chart",
        "ml_hint", "baseline_header", "compare_table", "compare_chart", "runs_empty",
    ):  # fmt: skip
        assert f'id="{element_id}"' in html, element_id
    assert "Settings &rarr; ML Configuration" in html
    assert not re.search(r"https?://", html), "the page must not load anything from the network"


def test_scripts_are_served_locally(client):
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "localStorage" in js.text and "Bearer" in js.text
    assert not re.search(r"https?://", js.text)
    assert client.get("/static/style.css").status_code == 200
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200
    assert plotly.headers["content-type"].startswith("text/javascript")
    assert "plotly.js" in plotly.text[:500]


def test_openapi_docs_are_served_offline(client):
    """/docs loads Swagger UI from this server (the package's files), never from a CDN."""
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href|url)[=:]\s*["\']([^"\']+)', page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert not re.search(r"https?://", page.text)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = client.get(f"/vendor/swagger-ui/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000, asset
    viewer = client.get("/docs/openapi.json").json()
    assert viewer["openapi"] == "3.0.3"  # the version Swagger UI 4 reads
    assert viewer["paths"] == client.get("/openapi.json").json()["paths"]
    assert client.get("/redoc").status_code == 404  # CDN only: switched off


def test_docs_without_the_package_say_what_to_install(client, monkeypatch):
    from sentinel.api.routes import docs

    monkeypatch.setattr(docs, "swagger_assets", lambda: None)
    r = client.get("/docs")
    assert r.status_code == 503 and "pip install swagger-ui-bundle" in r.text


def test_openapi_schema_lists_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/settings", "/api/ml/status", "/api/ml/retrain", "/api/ml/retrain/{symbol}",
        "/api/ml/models", "/api/ml/models/{symbol}", "/api/ml/performance", "/api/runs",
        "/api/runs/{run_id}", "/api/runs/{run_id}/report", "/api/sweeps",
        "/api/sweeps/{sweep_id}",
    ):  # fmt: skip
        assert p in paths, p


def test_the_form_has_the_settings_bounds(client):
    """The page's inputs take their limits from sentinel.settings (the API's bounds)."""
    html = client.get("/").text
    field = re.search(r'<input id="ml_min_samples_per_symbol"[^>]*>', html).group(0)
    assert 'min="10"' in field and 'max="100000"' in field
    field = re.search(r'<input id="ml_prediction_horizon_days"[^>]*>', html).group(0)
    assert 'min="1"' in field and 'max="365"' in field
