"""``/api/ml/performance/cross_sectional`` (and its summary in ``/api/ml/performance``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from sentinel.db import BacktestRun
from sentinel.ml.evaluation import RETURN, evaluate


def _run(store, output) -> int:
    return store.records.save_backtest_run(
        BacktestRun(name="r", config_hash="h", created_at=datetime.now(UTC),
                    config={"output": str(output)}, metrics={}, trades_csv="", equity_csv="")
    )  # fmt: skip


def _evaluation() -> dict:
    rng = np.random.default_rng(0)
    days = pd.date_range("2020-01-03", periods=12, freq="7D")
    rows = [(d, f"S{i}", s := rng.normal(), 0.01 * s + 0.01 * rng.normal())
            for d in days for i in range(8)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["date", "symbol", "blended_score", RETURN])
    frame.loc[frame["date"] == days[-1], RETURN] = np.nan
    return evaluate(frame, ["blended_score"], horizon_days=14).to_json()


def test_serves_the_file_beside_the_run_folder(store, make_client, tmp_path):
    client = make_client(store)
    assert client.get("/api/ml/performance/cross_sectional").status_code == 404
    assert client.get("/api/ml/performance").json()["cross_sectional"] is None
    first = _run(store, tmp_path / "runs" / "a")  # no evaluation beside it
    body = _evaluation()
    (tmp_path / "runs" / "b-ml_eval").mkdir(parents=True)
    (tmp_path / "runs" / "b-ml_eval" / "ml_eval.json").write_text(json.dumps(body))
    second = _run(store, tmp_path / "runs" / "b")
    got = client.get("/api/ml/performance/cross_sectional").json()
    assert got["run_id"] == second and got["scores"] == body["scores"]
    assert got["days_not_yet_known"] == 1 and len(got["per_day"]) == 12
    short = client.get(f"/api/ml/performance/cross_sectional?run_id={second}&per_day=false")
    assert "per_day" not in short.json()
    assert client.get(f"/api/ml/performance/cross_sectional?run_id={first}").status_code == 404
    assert client.get("/api/ml/performance/cross_sectional?run_id=999").status_code == 404
    assert client.get("/api/ml/performance/cross_sectional?run_id=0").status_code == 422
    summary = client.get("/api/ml/performance").json()["cross_sectional"]
    assert summary["scores"]["blended_score"] == body["scores"]["blended_score"]


def test_refuses_a_symlink_out_of_the_folder_and_a_relative_folder(store, make_client, tmp_path):
    client = make_client(store)
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"secret": 1}))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ml_eval.json").symlink_to(outside)
    _run(store, tmp_path / "c")
    _run(store, "relative/folder")
    assert client.get("/api/ml/performance/cross_sectional").status_code == 404
