"""Stored backtest runs and sweeps: summaries, equity curves as columns, 404s."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from sentinel.db import BacktestRun


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def _run(name: str, ratio: float, sweep_id: str | None, growth: float) -> BacktestRun:
    dates = pd.bdate_range("2017-01-02", periods=20, name="date")
    equity = pd.DataFrame(
        {"equity": 1e6 * growth ** np.arange(20), "cash": 1000.0}, index=dates
    ).reset_index()
    trades = pd.DataFrame({"date": dates[:3].strftime("%Y-%m-%d"), "symbol": ["A", "B", "C"]})
    return BacktestRun(
        name=name, config_hash=f"h{ratio}", created_at=datetime(2024, 1, 1, tzinfo=UTC),
        sweep_id=sweep_id,
        config={"start": "2017-01-02", "end": "2017-01-27", "ml": {"blend_ratio": ratio,
                                                                  "mode": "walk_forward"}},
        metrics={"cagr": growth - 1, "sharpe_ratio": 1.2, "max_drawdown": float("nan")},
        trades_csv=_csv(trades), equity_csv=_csv(equity),
    )  # fmt: skip


@pytest.fixture
def runs_client(store, make_client):
    ids = [
        store.records.save_backtest_run(_run("solo", 0.3, None, 1.001)),
        store.records.save_backtest_run(_run("blend", 0.0, "blend-abc123", 1.002)),
        store.records.save_backtest_run(_run("blend", 0.5, "blend-abc123", 1.003)),
    ]
    return make_client(store), ids


def test_list_runs_has_summaries_without_curves(runs_client):
    client, ids = runs_client
    runs = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in runs] == ids
    assert runs[0]["blend_ratio"] == 0.3 and runs[0]["ml_mode"] == "walk_forward"
    assert runs[0]["metrics"]["max_drawdown"] is None  # NaN is written as null
    assert "equity" not in runs[0]
    only = client.get("/api/runs", params={"sweep_id": "blend-abc123"}).json()["runs"]
    assert [r["id"] for r in only] == ids[1:]


def test_one_run_has_its_equity_curve_as_columns(runs_client):
    client, ids = runs_client
    run = client.get(f"/api/runs/{ids[2]}").json()
    eq = run["equity"]
    assert eq["date"][0].startswith("2017-01-02") and len(eq["date"]) == 20
    assert eq["equity"][0] == 1e6 and eq["equity"][-1] == pytest.approx(1e6 * 1.003**19)
    assert run["n_trades"] == 3
    assert run["config"]["ml"]["blend_ratio"] == 0.5


def test_missing_runs_are_404_and_bad_ids_422(runs_client):
    client, _ = runs_client
    r = client.get("/api/runs/999")
    assert r.status_code == 404 and "no backtest run with id 999" in r.json()["detail"]
    assert client.get("/api/runs/0").status_code == 422
    assert client.get("/api/runs/abc").status_code == 422


def test_sweeps_group_runs_and_carry_curves(runs_client):
    client, ids = runs_client
    sweeps = client.get("/api/sweeps").json()["sweeps"]
    assert len(sweeps) == 1
    assert sweeps[0]["sweep_id"] == "blend-abc123" and sweeps[0]["n_runs"] == 2
    assert [r["blend_ratio"] for r in sweeps[0]["runs"]] == [0.0, 0.5]
    one = client.get("/api/sweeps/blend-abc123").json()
    assert [r["id"] for r in one["runs"]] == ids[1:]
    assert all(len(r["equity"]["equity"]) == 20 for r in one["runs"])
    assert client.get("/api/sweeps/nope").status_code == 404
