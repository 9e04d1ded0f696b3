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


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/settings", "/api/ml/status", "/api/ml/retrain", "/api/ml/retrain/{symbol}",
        "/api/ml/models", "/api/ml/models/{symbol}", "/api/ml/performance", "/api/runs",
        "/api/runs/{run_id}", "/api/sweeps", "/api/sweeps/{sweep_id}",
    ):  # fmt: skip
        assert p in paths, p


def test_the_form_has_the_settings_bounds(client):
    """The page's inputs take their limits from sentinel.settings (the API's bounds)."""
    html = client.get("/").text
    field = re.search(r'<input id="ml_min_samples_per_symbol"[^>]*>', html).group(0)
    assert 'min="10"' in field and 'max="100000"' in field
    field = re.search(r'<input id="ml_prediction_horizon_days"[^>]*>', html).group(0)
    assert 'min="1"' in field and 'max="365"' in field
