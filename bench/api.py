"""API workloads: the 500-symbol model list, and 50 concurrent clients while a retrain runs.

Run with ``python -m bench.api`` (or ``python -m bench api_models api_load`` once
``bench/__main__.py`` imports this module). The server is the real ``sentinel serve`` in its own
process on a free loopback port, on a temporary database; the load clients are bounded asyncio
httpx loops (50 clients in all, 30 s, 127.0.0.1 only) in separate processes, like a load tool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
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
from typing import Any

import httpx

from bench._harness import Result, workload
from sentinel.api.probe import wait_until_serving

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
        store.records.upsert_model_record(
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
def _server(db_url: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """``sentinel serve`` (no scheduler, warnings only) on a free loopback port: (URL, pid)."""
    port = _free_port()
    env = {
        **os.environ, "SENTINEL_API_TOKEN": TOKEN, "SENTINEL_ENVIRONMENT": "test",
        "SENTINEL_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
    }  # fmt: skip
    cmd = [sys.executable, "-m", "cli", "--db", db_url, "serve", "--port", str(port),
           "--no-scheduler", "--log-level", "warning"]  # fmt: skip
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_serving(base, proc):
            raise RuntimeError((data_dir / "server.log").read_text())
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            print("bench: the server did not stop within 15 s; killed", file=sys.stderr)
            proc.kill()
            proc.wait(15)
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
        with _server(url, Path(tmp)) as (base, _), httpx.Client(base_url=base) as http:
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
    install_demo(store, generate_demo_universe(seed=7, n_symbols=40, start=date(2012, 1, 1),
                                               end=date(2017, 12, 31)))  # fmt: skip
    generate_samples(store, horizon_days=14)
    _records(store, N_MODELS)
    store.engine.dispose()
    return url


def _client_proc(
    base: str, n: int, seed: int, start_at: float, seconds: float, kind: str, out: Any
) -> None:
    """One load process: ``n`` keep-alive clients from ``start_at`` (wall clock) for ``seconds``.

    ``kind`` is ``raw`` (a minimal HTTP/1.1 keep-alive client on asyncio streams, under uvloop
    when installed: ~0.1 ms of client CPU per request, as a load tool like wrk) or ``httpx``
    (an ``httpx.AsyncClient``: several ms of client CPU per request, so on 2 cores the client
    rather than the server sets the latency).
    """
    run = _raw_clients if kind == "raw" else _httpx_clients
    try:
        import uvloop

        factory = uvloop.new_event_loop if kind == "raw" else None
    except ImportError:
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            out.put(runner.run(run(base, n, seed, start_at, seconds)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(([], [f"client process: {exc!r}"]))


Latencies = list[tuple[str, float]]


async def _httpx_clients(
    base: str, n: int, seed: int, start_at: float, seconds: float
) -> tuple[Latencies, list[str]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as http:
        # open the connections first: connection setup is not what is measured
        await asyncio.gather(*(http.get("/api/settings") for _ in range(n)))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        stop = time.monotonic() + seconds
        lat: Latencies = []
        errors: list[str] = []

        async def get(path: str, headers: dict[str, str]) -> tuple[int, str | None]:
            r = await http.get(path, headers=headers)
            return r.status_code, r.headers.get("etag")

        await asyncio.gather(*(_client_loop(get, stop, lat, errors, seed + i) for i in range(n)))
        return lat, errors


class _RawConnection:
    """One keep-alive HTTP/1.1 connection: GET, read the status line, headers and the body."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, str | None]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{extra}\r\n".encode())
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10.0)
            lines = head.decode("latin-1").split("\r\n")
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "chunked" in fields.get("transfer-encoding", ""):
                raise RuntimeError("chunked response")  # the app always sends a length
            size = int(fields.get("content-length", "0"))
            if size:
                await asyncio.wait_for(self.reader.readexactly(size), 10.0)
            if fields.get("connection", "").lower() == "close":
                self.close()
            return int(lines[0].split(" ", 2)[1]), fields.get("etag")
        except BaseException:
            self.close()  # a broken exchange: the next request reconnects
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _raw_clients(
    base: str, n: int, seed: int, start_at: float, seconds: float
) -> tuple[Latencies, list[str]]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conns = [_RawConnection(host, int(port)) for _ in range(n)]
    # open the connections first: connection setup is not what is measured
    await asyncio.gather(*(c.get("/api/settings", {}) for c in conns))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    stop = time.monotonic() + seconds
    lat: Latencies = []
    errors: list[str] = []
    await asyncio.gather(*(_client_loop(c.get, stop, lat, errors, seed + i)
                           for i, c in enumerate(conns)))  # fmt: skip
    for c in conns:
        c.close()
    return lat, errors


async def _client_loop(get: Any, stop: float, lat: Latencies, errors: list[str], seed: int) -> None:
    """One client, no think time: ``get(path, headers) -> (status, etag)`` in a loop."""
    rng = random.Random(seed)
    paths = [p for p, w in MIX for _ in range(w)]
    etag: str | None = None
    while time.monotonic() < stop:
        path = rng.choice(paths)
        headers = {"If-None-Match": etag} if path == "/api/ml/models" and etag else {}
        t = time.perf_counter()
        try:
            code, tag = await get(path, headers)
            ok = code in (200, 304)
            if path == "/api/ml/models" and code == 200:
                etag = tag if rng.random() < 0.5 else None
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, RuntimeError,
                TimeoutError, ValueError) as exc:  # fmt: skip
            ok, code = False, None
            errors.append(f"{path}: {type(exc).__name__}")
        lat.append((path, time.perf_counter() - t))
        if not ok and code is not None:
            errors.append(f"{path}: HTTP {code}")


async def _keep_retraining(
    http: httpx.AsyncClient, stop: float, busy: list[float], sample: Any = None
) -> int:
    """Start a background retrain whenever none runs; sample whether one runs every 0.5 s.

    ``sample()`` is called at each tick too (CPU accounting of short-lived processes).
    """
    auth = {"Authorization": f"Bearer {TOKEN}"}
    started = 0
    while time.monotonic() < stop:
        st = (await http.get("/api/ml/status")).json()["retrain"]
        running = st["state"] == "running"
        busy.append(1.0 if running else 0.0)
        if sample is not None:
            sample()
        if not running:
            r = await http.post("/api/ml/retrain?background=true", headers=auth)
            started += r.status_code == 202
        await asyncio.sleep(0.5)
    return started


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (Linux /proc; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> set[int]:
    """Child processes of ``pid`` and theirs (the server's training process)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - out)
            out |= kids
    return out


def _cpu_usage(server_pid: int, seen: dict[int, float]) -> tuple[float, float]:
    """CPU seconds so far of the server and of its descendants (each remembered once seen)."""
    for pid in _descendants(server_pid):
        seen[pid] = max(seen.get(pid, 0.0), _cpu_seconds(pid))
    return _cpu_seconds(server_pid), sum(seen.values())


async def _load(base: str, server_pid: int, procs: int, kind: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.post("/api/ml/retrain?background=true", headers=auth)).status_code == 202
        for _ in range(300):  # until the pass is past TensorFlow's import and training
            st = (await http.get("/api/ml/status")).json()["retrain"]
            if st["phase"] == "training":
                break
            await asyncio.sleep(0.2)
        # the clients run in their own processes (normal priority), as a load tool would
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 5.0
        sizes = [N_CLIENTS // procs + (i < N_CLIENTS % procs) for i in range(procs)]
        workers = [
            ctx.Process(
                target=_client_proc, args=(base, n, 1000 * i, start_at, LOAD_SECONDS, kind, out)
            )
            for i, n in enumerate(sizes)
        ]
        for w in workers:
            w.start()
        seen: dict[int, float] = {}
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu0 = _cpu_usage(server_pid, seen)
        busy: list[float] = []
        retrains = await _keep_retraining(
            http, time.monotonic() + LOAD_SECONDS, busy, lambda: _cpu_usage(server_pid, seen)
        )
        cpu1 = _cpu_usage(server_pid, seen)
        lat: list[tuple[str, float]] = []
        errors: list[str] = []
        for _ in workers:
            part_lat, part_err = await asyncio.to_thread(out.get, True, LOAD_SECONDS + 60)
            lat += part_lat
            errors += part_err
        for w in workers:
            w.join(10)
        phase = (await http.get("/api/ml/status")).json()["retrain"]["phase"]
    return {
        "lat": lat, "errors": errors, "busy": busy, "retrains": retrains + 1, "phase": phase,
        "server_cpu": cpu1[0] - cpu0[0], "train_cpu": cpu1[1] - cpu0[1],
    }  # fmt: skip


def _ms_quantiles(xs: list[float]) -> tuple[float, float, float]:
    ms = sorted(x * 1000 for x in xs)
    q = statistics.quantiles(ms, n=100) if len(ms) > 1 else ms * 99
    return q[49], q[98], ms[-1]


@workload("api_load")
def api_load() -> list[Result]:
    """50 concurrent clients for 30 s on loopback while a retrain runs: no errors, p99 < 200 ms.

    The clients are split over ``SENTINEL_BENCH_CLIENT_PROCS`` processes (default 2);
    ``SENTINEL_BENCH_CLIENT=httpx`` uses httpx clients instead of the lean raw HTTP/1.1 ones.
    """
    procs = max(1, int(os.environ.get("SENTINEL_BENCH_CLIENT_PROCS", "2")))
    kind = os.environ.get("SENTINEL_BENCH_CLIENT", "raw")
    with tempfile.TemporaryDirectory() as tmp:
        url = _load_store(Path(tmp))
        with _server(url, Path(tmp)) as (base, pid):
            r = asyncio.run(_load(base, pid, procs, kind))
    lat, errors = r["lat"], r["errors"]
    p50, p99, worst = _ms_quantiles([t for _, t in lat])
    n = len(lat)
    per_path = "; ".join(
        "{} p50/p99 {:.0f}/{:.0f} ms".format(
            path, *_ms_quantiles([t for p, t in lat if p == path])[:2]
        )
        for path, _ in MIX
    )  # fmt: skip
    busy_pct = 100 * statistics.mean(r["busy"])
    note = (f"{n:,} requests ({n / LOAD_SECONDS:.0f}/s) from {procs} {kind} client process(es), "
            f"mix {dict(MIX)}; retrain running in {busy_pct:.0f}% of samples, "
            f"{r['retrains']} passes started, phase at the end {r['phase']!r}; CPU in the window: "
            f"server {r['server_cpu']:.1f} s, training process {r['train_cpu']:.1f} s")  # fmt: skip
    return [
        Result("api_load", "p99 latency, 50 clients x 30 s during retrain", p99, "ms", 200.0,
               None, note),
        Result("api_load", "p50 latency", p50, "ms", None, None, per_path),
        Result("api_load", "max latency", worst, "ms", None, None, ""),
        Result("api_load", "requests/s", n / LOAD_SECONDS, "1/s", None, None, ""),
        Result("api_load", "errors", float(len(errors)), "count", 0.0, None,
               "; ".join(sorted(set(errors))[:5])),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(sys.argv[1:] or ["api_models", "api_load"]))
