"""API workloads: the 500-symbol model list, and 50 concurrent clients while a retrain runs.

Run with ``python -m bench.api`` (or ``python -m bench api_models api_load`` once
``bench/__main__.py`` imports this module). The server is the real ``sentinel serve`` in its own
process on a free loopback port, on a temporary database; the load client is a bounded asyncio
httpx loop (50 clients, 30 s, 127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from bench._harness import Result, workload

TOKEN = "bench-token-" + "x" * 20
N_MODELS = 500
N_CLIENTS = 50
LOAD_SECONDS = 30.0
#: What the load clients ask for: the UI's reads, weighted like a page that polls.
MIX = [
    ("/api/ml/models", 4),
    ("/api/ml/status", 3),
    ("/api/settings", 2),
    ("/api/runs", 1),
]


def _records(store, n: int) -> None:
    """``n`` model records with realistic metrics (what 500 trained symbols leave behind)."""
    from sentinel.db import ModelRecord

    now = datetime.now(UTC)
    for i in range(n):
        store.upsert_model_record(
            ModelRecord(
                symbol=f"S{i:03d}", trained_at=now, training_samples=300 + i,
                train_end=date(2024, 1, 1), version=f"v{i}",
                metrics={
                    "validation_rmse": 0.02 + i * 1e-5, "validation_mae": 0.015,
                    "validation_r2": 0.05, "validation_ic": 0.04, "validation_hit_rate": 0.53,
                    "training_samples": 300 + i,
                    "baselines": {"momentum": {"ic": 0.01, "rmse": 0.021},
                                  "zero": {"rmse": 0.02}},
                },
            )
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(db_url: str, data_dir: Path) -> Iterator[str]:
    """``sentinel serve`` (no scheduler, warnings only) on a free loopback port."""
    port = _free_port()
    env = {
        **os.environ, "SENTINEL_API_TOKEN": TOKEN, "SENTINEL_ENVIRONMENT": "test",
        "SENTINEL_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
    }  # fmt: skip
    cmd = [sys.executable, "-m", "sentinel", "--db", db_url, "serve", "--port", str(port),
           "--no-scheduler", "--log-level", "warning"]  # fmt: skip
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/settings", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data_dir / "server.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _median_ms(fn, n: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


@workload("api_models")
def api_models() -> list[Result]:
    """GET /api/ml/models with 500 symbols: median < 50 ms (real uvicorn and TestClient)."""
    from fastapi.testclient import TestClient

    from sentinel.api import create_app
    from sentinel.api._cache import RenderedCache
    from sentinel.db import Store
    from sentinel.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'api.db'}"
        store = Store(url)
        _records(store, N_MODELS)
        settings = Settings(api_token=TOKEN, environment="test", data_dir=Path(tmp))
        app = create_app(store, settings)
        with TestClient(app) as tc:
            assert len(tc.get("/api/ml/models").json()["models"]) == N_MODELS
            warm = _median_ms(lambda: tc.get("/api/ml/models").raise_for_status(), 200)

            def cold() -> None:
                app.state.models_cache = RenderedCache()  # every request renders from the DB
                tc.get("/api/ml/models").raise_for_status()

            miss = _median_ms(cold, 100)
        with _server(url, Path(tmp)) as base, httpx.Client(base_url=base) as http:
            body = http.get("/api/ml/models").json()
            assert len(body["models"]) == N_MODELS
            real = _median_ms(lambda: http.get("/api/ml/models").raise_for_status(), 300)
            size = len(http.get("/api/ml/models").content)
    note = f"{N_MODELS} records, {size / 1024:.0f} KiB of JSON"
    return [
        Result("api_models", "GET /api/ml/models, uvicorn on loopback (httpx), median",
               real, "ms", 50.0, None, note),
        Result("api_models", "same, in-process TestClient, median", warm, "ms", 50.0, None, note),
        Result("api_models", "same, TestClient, cache cleared before each request (render)",
               miss, "ms", 50.0, None, "ORM read of 500 records + JSON"),
    ]  # fmt: skip


def _load_store(tmp: Path) -> str:
    """Demo universe (40 symbols, 6 years) with samples, 500 model records, a stored run."""
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.db import Store
    from sentinel.ml.dataset import generate_samples

    url = f"sqlite:///{tmp / 'load.db'}"
    store = Store(url)
    install_demo(store, generate_demo_universe(seed=7, n_symbols=40, start="2012-01-01",
                                               end="2017-12-31"))  # fmt: skip
    generate_samples(store, horizon_days=14)
    _records(store, N_MODELS)
    store.engine.dispose()
    return url


async def _client_loop(
    http: httpx.AsyncClient, stop: float, lat: list[float], errors: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    paths = [p for p, w in MIX for _ in range(w)]
    etag: str | None = None
    while time.monotonic() < stop:
        path = rng.choice(paths)
        headers = {"If-None-Match": etag} if path == "/api/ml/models" and etag else {}
        t = time.perf_counter()
        try:
            r = await http.get(path, headers=headers)
            ok = r.status_code in (200, 304)
            if path == "/api/ml/models" and r.status_code == 200:
                etag = r.headers.get("etag") if rng.random() < 0.5 else None
        except httpx.HTTPError as exc:
            ok, r = False, None
            errors.append(f"{path}: {type(exc).__name__}")
        lat.append(time.perf_counter() - t)
        if not ok and r is not None:
            errors.append(f"{path}: HTTP {r.status_code}")


async def _keep_retraining(http: httpx.AsyncClient, stop: float, busy: list[float]) -> int:
    """Start a background retrain whenever none runs; sample whether one runs every 0.5 s."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    started = 0
    while time.monotonic() < stop:
        st = (await http.get("/api/ml/status")).json()["retrain"]
        running = st["state"] == "running"
        busy.append(1.0 if running else 0.0)
        if not running:
            r = await http.post("/api/ml/retrain?background=true", headers=auth)
            started += r.status_code == 202
        await asyncio.sleep(0.5)
    return started


async def _load(base: str) -> tuple[list[float], list[str], list[float], int]:
    limits = httpx.Limits(max_connections=N_CLIENTS + 2, max_keepalive_connections=N_CLIENTS + 2)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as http:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.post("/api/ml/retrain?background=true", headers=auth)).status_code == 202
        for _ in range(100):  # until the pass is past TensorFlow's import and training
            st = (await http.get("/api/ml/status")).json()["retrain"]
            if st["phase"] == "training":
                break
            await asyncio.sleep(0.2)
        # open the 50 connections first: connection setup is not what is measured
        await asyncio.gather(*(http.get("/api/settings") for _ in range(N_CLIENTS)))
        stop = time.monotonic() + LOAD_SECONDS
        lat: list[float] = []
        errors: list[str] = []
        busy: list[float] = []
        tasks = [_client_loop(http, stop, lat, errors, i) for i in range(N_CLIENTS)]
        results = await asyncio.gather(_keep_retraining(http, stop, busy), *tasks)
        return lat, errors, busy, int(results[0]) + 1


@workload("api_load")
def api_load() -> list[Result]:
    """50 concurrent clients for 30 s on loopback while a retrain runs: no errors, p99 < 200 ms."""
    with tempfile.TemporaryDirectory() as tmp:
        url = _load_store(Path(tmp))
        with _server(url, Path(tmp)) as base:
            lat, errors, busy, retrains = asyncio.run(_load(base))
    lat_ms = sorted(x * 1000 for x in lat)
    q = statistics.quantiles(lat_ms, n=100)
    n = len(lat_ms)
    busy_pct = 100 * statistics.mean(busy)
    note = (f"{n:,} requests ({n / LOAD_SECONDS:.0f}/s), mix {dict(MIX)}; retrain running "
            f"in {busy_pct:.0f}% of samples, {retrains} passes started")  # fmt: skip
    return [
        Result("api_load", "p99 latency, 50 clients x 30 s during retrain", q[98], "ms", 200.0,
               None, note),
        Result("api_load", "p50 latency", q[49], "ms", None, None, ""),
        Result("api_load", "max latency", lat_ms[-1], "ms", None, None, ""),
        Result("api_load", "errors", float(len(errors)), "count", 0.0, None,
               "; ".join(sorted(set(errors))[:5])),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(sys.argv[1:] or ["api_models", "api_load"]))
