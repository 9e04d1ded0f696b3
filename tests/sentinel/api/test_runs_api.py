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


# -- what the list says about a run, its report and its benchmark --------------------------------
def test_recorded_runs_are_described_and_link_their_reports(recorded_runs, make_client):
    from sentinel.db import Store

    url, ids, root = recorded_runs
    client = make_client(Store(url))
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    a, b = runs[ids["a"]], runs[ids["b"]]
    assert (a["name"], a["start"], a["end"]) == ("tiny", "2016-06-01", "2016-09-30")
    assert a["strategy"] == "top_n (n=2)" and b["strategy"] == "top_n (n=4)"
    assert a["universe"] == "all symbols" and a["ml_mode"] == "off"
    assert a["report_url"] == f"/api/runs/{ids['a']}/report" and a["report_kind"] == "report"
    page = client.get(a["report_url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == (root / "run_a" / "report.html").read_bytes()
    assert "sandbox allow-scripts" in page.headers["content-security-policy"]
    for sid in ids["sweep"]:  # a sweep point links the sweep's report
        assert runs[sid]["report_kind"] == "sweep"
        assert (
            client.get(runs[sid]["report_url"]).content
            == (root / "sweep" / "sweep.html").read_bytes()
        )
    assert {runs[s]["strategy"] for s in ids["sweep"]} == {"top_n (n=1)", "top_n (n=3)"}


def test_a_run_carries_the_benchmark_it_was_measured_against(recorded_runs, make_client):
    from sentinel.db import Store

    url, ids, root = recorded_runs
    store = Store(url)
    run = make_client(store).get(f"/api/runs/{ids['a']}").json()
    eq = run["equity"]
    assert len(eq["benchmark"]) == len(eq["equity"]) > 50
    bench = store.market.get_benchmark(run["benchmark"])["close"]
    first = bench[bench.index.strftime("%Y-%m-%d") == eq["date"][0][:10]]
    assert eq["benchmark"][0] == pytest.approx(float(first.iloc[0]))


def test_old_rows_take_the_benchmark_from_the_store(demo_store, make_client):
    """A row written before the benchmark was stored with the curve (the fixture's shape)."""
    rid = demo_store.records.save_backtest_run(_run("old", 0.3, None, 1.001))
    run = make_client(demo_store).get(f"/api/runs/{rid}").json()
    bars = demo_store.market.get_benchmark()["close"]
    close = dict(zip(bars.index.strftime("%Y-%m-%d"), bars, strict=True))
    expected = [close.get(d[:10]) for d in run["equity"]["date"]]
    assert run["equity"]["benchmark"] == expected  # None on the curve's days without a bar
    assert sum(v is not None for v in expected) >= 15
    assert run["strategy"] is None and run["report_url"] is None  # old rows stay readable


def _with_output(folder, sweep_id=None) -> BacktestRun:
    row = _run("r", 0.3, sweep_id, 1.001)
    row.config = {**row.config, "output": str(folder)}
    return row


def test_the_report_route_serves_only_the_report_inside_the_recorded_folder(
    store, make_client, tmp_path
):
    inside, outside = tmp_path / "run", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.html").write_text("secret")
    (inside / "report.html").symlink_to(outside / "secret.html")  # a link out of the folder
    linked = store.records.save_backtest_run(_with_output(inside))
    relative = store.records.save_backtest_run(_with_output("runs/demo"))
    missing = store.records.save_backtest_run(_with_output(tmp_path / "gone"))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "report.html").write_text("<p>ok</p>")
    (plain / "sweep.html").write_text("<p>sweep</p>")
    good = store.records.save_backtest_run(_with_output(plain))
    client = make_client(store)
    for rid in (linked, relative, missing):
        r = client.get(f"/api/runs/{rid}/report")
        assert r.status_code == 404 and f"run {rid} has no report file" in r.json()["detail"]
    assert client.get(f"/api/runs/{good}/report").text == "<p>ok</p>"
    assert client.get("/api/runs/999/report").status_code == 404
    for bad in ("..%2F..%2Fetc%2Fpasswd", "0", "-1"):
        assert client.get(f"/api/runs/{bad}/report").status_code in (404, 422)
    listed = {r["id"]: r["report_url"] for r in client.get("/api/runs").json()["runs"]}
    assert listed == {linked: None, relative: None, missing: None,
                      good: f"/api/runs/{good}/report"}  # fmt: skip
