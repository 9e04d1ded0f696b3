"""End to end in headless Chromium: change the blend ratio in the page, save, reload, see it kept.

The server is the real ``sentinel serve`` (a subprocess on a free loopback port, temporary
database and data folder); the browser is Debian's chromium driven by Selenium through
chromedriver. Skips cleanly when any of the three is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, demo_store):
    """``sentinel serve`` on the demo store with one model record, on a free port."""
    from sentinel.db import ModelRecord

    demo_store.records.upsert_model_record(
        ModelRecord(symbol="DAA", trained_at=datetime.now(UTC), training_samples=143,
                    metrics={"validation_rmse": 0.02, "validation_ic": 0.1})
    )  # fmt: skip
    port = _free_port()
    env = {
        **os.environ, "SENTINEL_API_TOKEN": TOKEN, "SENTINEL_ENVIRONMENT": "test",
        "SENTINEL_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    url = demo_store.engine.url.render_as_string(hide_password=False)
    cmd = [sys.executable, "-m", "cli", "--db", url, "serve", "--port", str(port),
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


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


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
