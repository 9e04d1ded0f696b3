"""The guides in docs/guides work as written: their excerpts are the example files, their console
commands run (in a scratch copy of examples/), and their Python blocks run.

``python`` steps run as processes; ``sentinel`` steps run in this process (the ``run_cli``
fixture: a fresh process's exit code and output, with the step's PYTHONPATH put on sys.path as
Python would), which spares each a second of imports and TensorFlow's."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs" / "guides").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
PLUGIN = "overnight_gap:overnight_gap"


def _blocks(guide: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(guide.read_text())]


def _excerpt_path(body: str) -> Path | None:
    first = body.splitlines()[0] if body.strip() else ""
    if first.startswith("# examples/"):
        return ROOT / first[2:].strip()
    return None


def test_there_are_three_guides():
    names = {g.stem for g in GUIDES}
    assert {"write_a_strategy", "add_a_feature", "add_a_data_source"} <= names


@pytest.mark.parametrize("guide", GUIDES, ids=lambda g: g.stem)
def test_excerpts_are_the_example_files(guide):
    """A block starting with ``# examples/...`` is copied from that file, verbatim."""
    excerpts = [(p, body) for _, body in _blocks(guide) if (p := _excerpt_path(body))]
    assert excerpts, f"{guide.name} shows no example file"
    for path, body in excerpts:
        assert path.is_file(), f"{guide.name}: {path} does not exist"
        shown = body.split("\n", 1)[1]
        assert shown in path.read_text(), f"{guide.name}: the excerpt of {path.name} is stale"


def _run_steps(guide: Path, tmp_path: Path, run_cli, monkeypatch) -> list[str]:
    """Run the guide's ``$`` commands and unlabelled Python blocks in order; returns outputs."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(ROOT),
    }
    outputs = []
    for lang, body in _blocks(guide):
        if lang == "console":
            steps = [line[2:] for line in body.splitlines() if line.startswith("$ ")]
        elif lang == "python" and _excerpt_path(body) is None:
            script = tmp_path / "guide_block.py"
            script.write_text(body)
            steps = [f"PYTHONPATH=examples/features python {script.name}"]
        else:
            continue
        for step in steps:
            words = shlex.split(step)
            if words[0] == "export":
                key, _, value = words[1].partition("=")
                env[key] = value
                continue
            extra = {}
            while "=" in words[0]:
                key, _, value = words.pop(0).partition("=")
                extra[key] = value if key != "PYTHONPATH" else f"{value}:{ROOT}"
            if words[0] == "sentinel":
                for name, module in list(sys.modules.items()):  # plug-ins import afresh
                    if "/examples/" in (getattr(module, "__file__", None) or ""):
                        monkeypatch.delitem(sys.modules, name)
                paths = extra.get("PYTHONPATH", "").split(":")
                added = [str(tmp_path / p) for p in paths if p and p != str(ROOT)]
                sys.path[:0] = added  # for this step only, as its PYTHONPATH would
                try:
                    done = run_cli(*words[1:], env={**env, **extra}, cwd=tmp_path)
                finally:
                    for folder in added:
                        sys.path.remove(folder)
            else:
                cmd = ([sys.executable] if words[0] == "python" else [words[0]]) + words[1:]
                done = subprocess.run(
                    cmd, cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True,
                    timeout=900,
                )  # fmt: skip
            assert done.returncode == 0, f"{guide.name}: `{step}` failed:\n{done.stderr[-2000:]}"
            outputs.append(done.stdout)
    return outputs


@pytest.mark.slow
def test_write_a_strategy_guide_runs(tmp_path, run_cli, monkeypatch):
    out = _run_steps(ROOT / "docs/guides/write_a_strategy.md", tmp_path, run_cli, monkeypatch)
    assert "report:" in out[-1]
    report = tmp_path / "runs" / "low_volatility" / "report.html"
    assert report.is_file()
    from engine.config import load_config

    cfg = load_config(tmp_path / "examples/configs/low_volatility.yaml")
    assert type(cfg.strategy.build()).__name__ == "LowVolatility"


@pytest.mark.slow
def test_add_a_data_source_guide_runs(tmp_path, run_cli, monkeypatch):
    out = _run_steps(ROOT / "docs/guides/add_a_data_source.md", tmp_path, run_cli, monkeypatch)
    assert "wrote stooq_prices.csv" in out[0]
    assert "DAA" in out[2] or "3" in out[2]
    assert "report:" in out[-1]
    from sentinel.db import Store

    store = Store(f"sqlite:///{tmp_path / 'guide_data.db'}")
    assert sorted(store.market.universe_symbols(date(2017, 6, 1))) == ["DAA", "DAB", "DAC"]
    assert store.market.price_span() == (date(2016, 6, 1), date(2017, 12, 29))


def test_the_data_source_example_imports_through_the_importer(tmp_path, store):
    sys.path.insert(0, str(ROOT / "examples" / "data_source"))
    try:
        import stooq_source
    finally:
        sys.path.remove(str(ROOT / "examples" / "data_source"))
    sample = sorted((ROOT / "examples/data_source/sample").glob("*.txt"))
    reports = stooq_source.import_stooq(store, sample)
    assert sum(r.rows_valid for r in reports) == 1200
    bars = store.market.get_prices("DAB", end_date=date(2016, 6, 3))
    first = sample[1].read_text().splitlines()[1].split(",")
    assert first[:3] == ["DAB.US", "D", "20160601"]
    assert bars["close"].iloc[0] == pytest.approx(float(first[7]))
    weekly = tmp_path / "w.txt"
    weekly.write_text(sample[0].read_text().replace(",D,20160603,", ",W,20160603,"))
    with pytest.raises(Exception, match=r"w.txt, line 4: not a daily bar \(<PER> 'W'\)"):
        stooq_source.read_stooq(weekly)
    bad = tmp_path / "bad.txt"
    bad.write_text(sample[0].read_text().replace(",D,20160603,000000,", ",D,20160603,000000,-"))
    from sentinel.errors import DataImportError

    before = store.market.price_span()
    with pytest.raises(DataImportError, match="line 4: non-positive price"):
        stooq_source.import_stooq(store, [bad])
    assert store.market.price_span() == before  # all or nothing


@pytest.mark.slow
def test_add_a_feature_guide_runs(tmp_path, run_cli, monkeypatch):
    out = _run_steps(ROOT / "docs/guides/add_a_feature.md", tmp_path, run_cli, monkeypatch)
    assert f"causal on this sample: {PLUGIN}" in out[0]
    assert "report:" in out[-1]


@pytest.mark.slow
def test_plugin_feature_models_have_21_inputs_and_old_models_are_refused(tmp_path, monkeypatch):
    """Train with the example feature through a FeatureBook; the saved models record 21 names;
    a run with the default 20 refuses them at load, a run with the same 21 loads them."""
    from engine.session import current_models
    from sentinel.db import Store
    from sentinel.feature_registry import run_features
    from sentinel.ml.dataset import FeatureBook, generate_samples
    from sentinel.ml.training import save_models, train_as_of
    from sentinel.ml_features import FEATURE_NAMES
    from tests.conftest import make_demo_db

    monkeypatch.syspath_prepend(str(ROOT / "examples" / "features"))
    store = Store(f"sqlite:///{make_demo_db(tmp_path, 11, 3, '2015-01-01', '2016-12-30')}")
    generate_samples(store, horizon_days=14)
    names = run_features(["default", PLUGIN])
    book = FeatureBook(store, features=names)
    view = store.view(date(2016, 9, 30))
    report = train_as_of(view, as_of=view.day, horizon_days=14, min_samples=20, max_epochs=1,
                         validate=False, book=book)  # fmt: skip
    assert report.models and report.features == names
    assert {m.n_features_in_ for m in report.models.values()} == {21}
    save_models(store, report, tmp_path / "models")
    old, _ = current_models(tmp_path / "models", None, list(FEATURE_NAMES))
    assert old.symbols == [] and set(old.load_errors) == set(report.models)
    assert all("trained with features [default, overnight_gap:overnight_gap] (21 inputs) but "
               "this run uses [default] (20)" in e for e in old.load_errors.values())  # fmt: skip
    same, _ = current_models(tmp_path / "models", None, names)
    assert same.symbols == sorted(report.models)
