"""bench.scale's memory point: the store is built apart, and RSS is recorded per phase."""

from __future__ import annotations

import numpy as np

from bench.scale import _PhaseRSS, build_store, phase_table
from sentinel.db import Store


def test_build_store_writes_the_demo_universe(tmp_path) -> None:
    path = tmp_path / "s.db"
    out = build_store(str(path), 6, "2020-01-01", "2020-03-31")
    store = Store(f"sqlite:///{path}")
    assert len(store.market.securities()) == 6
    assert store.market.get_price_panel(None)["symbol"].nunique() == 6
    assert out["setup_peak_mb"] > 0 and out["setup_s"] > 0
    store.engine.dispose()


def test_phases_record_rss_growth_and_render() -> None:
    phases = _PhaseRSS()
    block = np.ones(40_000_000 // 8)  # 40 MB, touched
    phases.mark("after 40 MB")
    phases.close()
    start, after = phases.phases
    assert after["rss_mb"] - start["rss_mb"] >= 30
    assert all(p["peak_mb"] >= p["rss_mb"] for p in phases.phases)
    table = phase_table({"phases": phases.phases}).splitlines()
    assert len(table) == 4 and table[3].startswith("| after 40 MB |")
    del block


def test_retrains_are_marked_and_the_trainer_is_restored(monkeypatch) -> None:
    import sentinel.ml.training as training
    from bench.scale import _retrain_marks

    seen = []
    monkeypatch.setattr(training, "train_as_of", lambda store, **kw: seen.append(kw) or "fit")
    fit = training.train_as_of
    phases = _PhaseRSS()
    with _retrain_marks(phases):
        assert training.train_as_of(None, as_of="2019-01-04") == "fit"
    phases.close()
    assert training.train_as_of is fit and seen == [{"as_of": "2019-01-04"}]
    assert [p["phase"] for p in phases.phases] == [
        "start", "retrain as of 2019-01-04", "rebalances after the retrain"]  # fmt: skip
