"""What a run's list row says, from the config it stored (and from older, sparser rows)."""

from __future__ import annotations

import pytest

from sentinel.api.run_labels import ml_label, report_file, strategy_label, universe_label


@pytest.mark.parametrize(
    ("universe", "data", "expected"),
    [
        ({"kind": "all"}, {"source": "store"}, "all symbols"),
        ({"kind": "all"}, {"source": "demo", "demo_symbols": 50}, "all symbols (demo data, 50)"),
        ({"kind": "list", "symbols": ["AAA", "BBB"]}, {}, "list: AAA, BBB"),
        ({"kind": "list", "symbols": list("ABCDEFG")}, {}, "list: A, B, C, D, +3"),
        ({"kind": "sector", "sectors": ["Energy", "Tech"]}, {}, "sectors: Energy, Tech"),
    ],
)
def test_universe_label(universe, data, expected):
    assert universe_label({"universe": universe, "data": data}) == expected


def test_strategy_and_ml_labels():
    cfg = {"strategy": {"name": "score_weighted", "params": {"n": 12, "max_weight": 0.15}},
           "ml": {"enabled": True, "mode": "walk_forward"}}  # fmt: skip
    assert strategy_label(cfg) == "score_weighted (max_weight=0.15, n=12)"
    assert ml_label(cfg) == "walk_forward"
    assert ml_label({"ml": {"enabled": False, "mode": "current"}}) == "off"  # disabled wins
    assert strategy_label({"strategy": {"name": "top_n"}}) == "top_n"


def test_old_sparse_rows_have_no_labels():
    assert strategy_label({}) is None and universe_label({}) is None and ml_label({}) is None
    assert report_file({}, sweep=False) is None


def test_report_file_is_a_fixed_name_inside_the_folder(tmp_path):
    (tmp_path / "sweep.html").write_text("s")
    cfg = {"output": str(tmp_path)}
    assert report_file(cfg, sweep=False) is None  # a standalone run has no sweep report
    assert report_file(cfg, sweep=True) == tmp_path.resolve() / "sweep.html"
    (tmp_path / "report.html").mkdir()  # not a file
    assert report_file(cfg, sweep=False) is None
    assert report_file({"output": str(tmp_path) + "\x00x"}, sweep=True) is None
