"""End to end in headless Chromium: the web UI, the API docs and the HTML reports.

The server is the real ``sentinel serve`` (a subprocess on a free loopback port, temporary
database and data folder); the browser is Debian's chromium driven by Selenium through
chromedriver, with every host name but 127.0.0.1 unresolvable (so a page that needs a CDN fails
here as it would offline). Each page is checked the same way: it renders, every plotly chart
has data, and the console has no error; a screenshot of each is saved (to
``$SENTINEL_SCREENSHOT_DIR`` when set, else a temporary folder). Skips cleanly when selenium,
chromium or chromedriver is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sentinel.api.probe import wait_until_serving
from tests.sentinel.api.conftest import TOKEN

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("chromium / chromedriver not installed", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow
#: Every host but the server's resolves to nothing: a CDN script fails as on an offline machine.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _serving(db_url: str, data_dir: Path):
    """``sentinel serve`` on ``db_url`` on a free loopback port; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ, "SENTINEL_API_TOKEN": TOKEN, "SENTINEL_ENVIRONMENT": "test",
        "SENTINEL_DATA_DIR": str(data_dir),
    }  # fmt: skip
    cmd = [sys.executable, "-m", "cli", "--db", db_url, "serve", "--port", str(port),
           "--no-scheduler"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_serving(base, proc):
            proc.kill()
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"sentinel serve did not start: {out}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_template):
    """``sentinel serve`` on a copy of the demo store with one model record, on a free port; one
    per module (a start costs seconds). Of its two tests only the blend one writes (the saved
    ratio, which it reads first), and the models table one does not read it."""
    from sentinel.db import ModelRecord, Store

    folder = tmp_path_factory.mktemp("served")
    shutil.copy(demo_template, folder / "demo.db")
    demo_store = Store(f"sqlite:///{folder / 'demo.db'}")
    metrics = {
        "validation_rmse": 0.02, "validation_ic": 0.1,
        "baselines": {"zero": {"ic": None}, "reversal_20": {"ic": 0.04},
                      "momentum_60": {"ic": -0.02}, "momentum": {"ic": -0.01}},
    }  # fmt: skip
    demo_store.records.upsert_model_record(
        ModelRecord(symbol="DAA", trained_at=datetime.now(UTC), training_samples=143,
                    metrics=metrics)
    )  # fmt: skip
    url = demo_store.engine.url.render_as_string(hide_password=False)
    demo_store.engine.dispose()
    with _serving(url, folder / "data") as base:
        yield base


@pytest.fixture(scope="module")
def runs_server(recorded_runs, tmp_path_factory):
    """``sentinel serve`` on a database of real runs and a sweep (no models), with outputs."""
    url, ids, _ = recorded_runs
    with _serving(url, tmp_path_factory.mktemp("data")) as base:
        yield base, ids


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("SENTINEL_SCREENSHOT_DIR")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless Chromium for the module (a start costs a second); tests take ``browser``."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chrome-profile")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--window-size=1300,1600", OFFLINE,
    ):  # fmt: skip
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium):
    """The module's Chromium as a fresh one: a blank page at the start size, no cookies and no
    console entries of an earlier test; the storage of the test's last page is cleared after it
    (each server has its own port, hence its own origin)."""
    chromium.get("about:blank")
    chromium.delete_all_cookies()
    chromium.set_window_size(1300, 1600)
    chromium.get_log("browser")  # reading the log empties it
    yield chromium
    chromium.execute_script("try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}")


def _value(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).get_attribute("value")


def _text_is(driver, element_id: str, prefix: str, timeout: float = 20) -> str:
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.ID, element_id).text.startswith(prefix)
    )
    return driver.find_element(By.ID, element_id).text


def _set_blend(driver, value: str) -> None:
    box = driver.find_element(By.ID, "blend_number")
    box.clear()
    box.send_keys(value)


def test_blend_ratio_is_changed_saved_and_kept(server, browser):
    wait = WebDriverWait(browser, 30)
    browser.get(server + "/")
    wait.until(lambda d: _value(d, "blend_number") == "0.3")  # loaded from GET /api/settings
    wait.until(lambda d: "DAA" in d.find_element(By.ID, "models_table").text)

    # without the token the write is refused and nothing changes
    _set_blend(browser, "0.65")
    browser.find_element(By.ID, "save_settings").click()
    assert "401" in _text_is(browser, "settings_msg", "not saved")
    assert httpx.get(server + "/api/settings").json()["ml_wavelet_blend_ratio"] == 0.3

    browser.find_element(By.ID, "api_token").send_keys(TOKEN)
    browser.find_element(By.ID, "save_token").click()
    _text_is(browser, "token_msg", "token remembered")
    _set_blend(browser, "0.65")
    assert _value(browser, "ml_wavelet_blend_ratio") == "0.65"  # the slider follows
    browser.find_element(By.ID, "save_settings").click()
    _text_is(browser, "settings_msg", "saved")

    browser.refresh()
    wait.until(lambda d: _value(d, "blend_number") == "0.65")
    assert _value(browser, "ml_wavelet_blend_ratio") == "0.65"
    assert httpx.get(server + "/api/settings").json()["ml_wavelet_blend_ratio"] == 0.65
    assert _value(browser, "api_token") == TOKEN  # kept in localStorage across the reload


# -- every page renders, its charts have data, its console has no error ---------------------------
CHART_DATA = """return Array.from(document.querySelectorAll('.js-plotly-plot')).map((el) => [
    el.id || el.className, (el.data || []).length,
    (el.data || []).reduce((n, t) => n + (t.x || t.values || t.z || []).length, 0)])"""


def _charts(driver) -> list[list]:
    """``[id, traces, points]`` of each plotly chart on the page."""
    return driver.execute_script(CHART_DATA)


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _check_page(driver, shots: Path, name: str, min_charts: int) -> list[list]:
    """Charts drawn with data, no console error; a full-height screenshot to ``shots``."""
    WebDriverWait(driver, 30).until(lambda d: len(_charts(d)) >= min_charts)
    charts = _charts(driver)
    empty = [c for c in charts if c[1] == 0 or c[2] == 0]
    assert not empty, f"{name}: charts without data: {empty}"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1300, min(max(height, 800), 6000))
    driver.save_screenshot(str(shots / f"{name}.png"))
    assert (shots / f"{name}.png").stat().st_size > 10_000
    assert _console_errors(driver) == [], name
    return charts


def _rows(driver, table: str) -> list[str]:
    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def test_runs_page_lists_compares_and_charts_against_the_benchmark(runs_server, browser, shots):
    base, ids = runs_server
    runs = {r["id"]: r for r in httpx.get(base + "/api/runs").json()["runs"]}
    browser.get(base + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: len(_rows(d, "runs_table")) == len(runs))
    rows = _rows(browser, "runs_table")
    newest = rows[0]  # newest first
    assert newest.split()[0] == str(max(runs))
    row_a = next(r for r in rows if r.split()[0] == str(ids["a"]))
    for text in ("tiny", "2016-06-01", "2016-09-30", "top_n (n=2)", "all symbols", "off",
                 "report"):  # fmt: skip
        assert text in row_a, (text, row_a)
    link = browser.find_element(By.CSS_SELECTOR, f'a[href="/api/runs/{ids["a"]}/report"]')
    assert link.text == "report"

    # the selected run's chart: its equity and the benchmark rebased to the same start
    wait.until(lambda d: any(c[0] == "run_chart" and c[1] == 2 for c in _charts(d)))
    names = browser.execute_script(
        "return document.getElementById('run_chart').data.map((t) => t.name)"
    )
    assert names[0].startswith(f"run {max(runs)}:") and names[1].startswith("benchmark ")
    first = browser.execute_script(
        "const d = document.getElementById('run_chart').data;"
        "const i = d[1].y.findIndex((v) => v !== null); return [d[0].y[i], d[1].y[i]];"
    )
    assert first[0] == first[1]

    # two runs side by side
    for rid in (ids["a"], ids["b"]):
        browser.find_element(By.CSS_SELECTOR, f'input[data-run="{rid}"]').click()
    wait.until(lambda d: d.find_element(By.ID, "compare").is_displayed())
    wait.until(lambda d: any(c[0] == "compare_chart" and c[1] == 3 for c in _charts(d)))
    table = browser.find_element(By.ID, "compare_table").text
    assert f"run {ids['a']}" in table and f"run {ids['b']}" in table
    assert "top_n (n=2)" in table and "top_n (n=4)" in table
    cagr = next(line for line in table.splitlines() if line.startswith("CAGR"))
    expected = [f"{100 * runs[i]['metrics']['cagr']:.2f}%" for i in (ids["a"], ids["b"])]
    assert cagr.split()[1:] == expected

    # ML: no model in this store, so the page says what makes one
    hint = browser.find_element(By.ID, "ml_hint")
    assert hint.is_displayed() and "sentinel ml train" in hint.text
    assert not browser.find_element(By.ID, "models_table").is_displayed()
    charts = _check_page(browser, shots, "ui_runs", min_charts=3)
    assert {c[0] for c in charts} == {"run_chart", "compare_chart", "sweep_chart"}


def test_models_table_labels_the_baseline(server, browser, shots):
    browser.get(server + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "DAA" in d.find_element(By.ID, "models_table").text)
    model = httpx.get(server + "/api/ml/models").json()["models"][0]
    header = browser.find_element(By.ID, "baseline_header")
    assert "baseline IC" in header.text and "momentum" in header.get_attribute("title")
    cell = browser.find_element(By.CSS_SELECTOR, "#models_table tbody tr td:nth-child(8)")
    assert cell.text.startswith(f"{model['baseline_ic']:.3f}")
    if model.get("best_baseline"):
        assert f"({model['best_baseline']})" in cell.text
        for name in model["baseline_ics"]:
            assert name in cell.get_attribute("title")
    assert not browser.find_element(By.ID, "ml_hint").is_displayed()
    agg = httpx.get(server + "/api/ml/status").json()["aggregate_metrics"]
    cards = browser.find_element(By.ID, "ml_summary").text
    assert f"avg model IC\n{agg['avg_validation_ic']:.3f}" in cards
    shown = {n: b["avg_validation_ic"] for n, b in (agg.get("baselines") or {}).items()
             if b.get("avg_validation_ic") is not None}  # fmt: skip
    assert "reversal_20" in shown
    for name, ic in shown.items():
        assert f"avg IC, baseline {name}\n{ic:.3f}" in cards
    _check_page(browser, shots, "ui_models", min_charts=0)


def test_api_docs_render_offline(runs_server, browser, shots):
    base, _ = runs_server
    browser.get(base + "/docs")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    assert "sentinel" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    assert not browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .errors-wrapper")
    _check_page(browser, shots, "api_docs", min_charts=0)


def test_run_and_sweep_reports_render_through_the_service(runs_server, browser, shots):
    base, ids = runs_server
    browser.get(f"{base}/api/runs/{ids['a']}/report")  # sandboxed by its CSP
    charts = _check_page(browser, shots, "report", min_charts=5)
    assert all(c[1] > 0 for c in charts)
    browser.get(f"{base}/api/runs/{ids['sweep'][0]}/report")
    _check_page(browser, shots, "sweep", min_charts=2)


def test_reports_open_from_their_folder_offline(recorded_runs, browser, shots):
    """The files themselves, as a user opens them: self-contained, no network needed."""
    _, _, root = recorded_runs
    browser.get((root / "run_a" / "report.html").as_uri())
    _check_page(browser, shots, "report_file", min_charts=5)
    browser.get((root / "sweep" / "sweep.html").as_uri())
    _check_page(browser, shots, "sweep_file", min_charts=2)


def test_a_page_that_needs_the_network_fails_these_checks(browser, tmp_path):
    """The harness can fail: a script from a CDN is an error here, as on an offline machine."""
    page = tmp_path / "cdn.html"
    page.write_text(
        '<!doctype html><script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script>'
        "<div id='c'></div>"
    )
    browser.get(page.as_uri())
    assert _charts(browser) == []
    errors = _console_errors(browser)
    assert errors and "cdn.plot.ly" in errors[0]
