"""Bad input never ends a run: each case gives a clear reason or the recorded wavelet fallback."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from engine.backfill import backfill_predictions
from sentinel.db import Store
from sentinel.ml.dataset import FeatureBook, generate_samples
from sentinel.ml.model_files import ModelStore
from sentinel.ml.predictor import Predictor
from sentinel.ml.training import save_models, train_as_of
from sentinel.planner import Analyzer, RebalanceEngine

TINY = {"max_epochs": 2, "min_samples": 30, "validate": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_universe):
    """A demo store with samples and saved models for three symbols (trained once per module)."""
    from sentinel.data.demo import install_demo

    tmp = tmp_path_factory.mktemp("bad_input")
    store = Store(f"sqlite:///{tmp / 'bad.db'}")
    install_demo(store, demo_universe)
    syms = [s.symbol for s in store.market.securities()[:3]]
    generate_samples(store, syms, horizon_days=14)
    report = train_as_of(store, symbols=syms, **TINY)
    assert sorted(report.models) == syms
    save_models(store, report, tmp / "models")
    yield store, syms, tmp / "models", report
    store.engine.dispose()


@pytest.fixture
def models(trained, tmp_path):
    """A private copy of the model folder that a test may damage."""
    _, _, root, _ = trained
    dst = tmp_path / "models"
    shutil.copytree(root, dst, symlinks=True)
    return dst


def _samples_as_rows(df: pd.DataFrame) -> list[dict]:
    return [
        r._asdict() | {"date": r.date.date(), "label_known_at": r.label_known_at.date()}
        for r in df.itertuples(index=False)
    ]


def test_too_few_samples_skipped_with_reason(trained):
    store, syms, _, _ = trained
    report = train_as_of(store, symbols=[*syms, "NOPE"], **{**TINY, "min_samples": 10_000})
    assert report.models == {} and report.failed == {}
    n = report.samples[syms[0]]
    assert report.skipped[syms[0]] == f"{n} samples < ml_min_samples_per_symbol 10000"
    assert report.skipped["NOPE"] == "no training samples"
    assert report.summary()["symbols_skipped"] == 4


def test_constant_labels_fail_alone(trained, tmp_path):
    store, syms, _, _ = trained
    other = Store(f"sqlite:///{tmp_path / 'c.db'}")
    src = store.view(None).signals.get_training_samples(symbol=syms[0])
    other.signals.upsert_training_samples(_samples_as_rows(src))
    other.signals.upsert_training_samples(_samples_as_rows(src.assign(symbol="FLAT", label=0.02)))
    report = train_as_of(other, **TINY)
    assert list(report.models) == [syms[0]]
    assert "labels are constant" in report.failed["FLAT"]
    other.engine.dispose()


def test_nan_and_inf_features_fall_back_to_wavelet(trained):
    store, syms, root, _ = trained
    view = store.view(store.market.trading_days()[-1])
    wavelet = Analyzer().update_scores(view, syms)
    predictor = Predictor(ModelStore(root))
    predictor.load(syms)
    features = FeatureBook(store, syms).panel_as_of(syms, view)
    features.iloc[1, 3] = np.nan
    features.iloc[2, 0] = np.inf
    out = RebalanceEngine().predict_and_blend(view, wavelet, features, predictor, blend_ratio=0.5)
    assert out.loc[syms[0], "fallback"] is None and np.isfinite(out.loc[syms[0], "ml_score"])
    for s in syms[1:]:
        assert out.loc[s, "fallback"] == "non-finite features"
        assert out.loc[s, "blended_score"] == out.loc[s, "wavelet_score"]


def _damage_corrupt(folder):
    (folder / "nn_model.keras").write_bytes(b"PK\x03\x04 not a keras archive")


def _damage_half_written(folder):
    (folder / "xgb_model.json").unlink()  # as if the writer died before this file


def _damage_extra_file(folder):
    (folder / "payload.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_corrupt, "nn_model.keras does not match its recorded checksum"),
        (_damage_half_written, "missing file(s) ['xgb_model.json']"),
        (_damage_extra_file, "unexpected file(s) ['payload.pkl']; refusing to load"),
    ],
)
def test_broken_model_folder_recorded_and_run_goes_on(trained, models, damage, reason):
    store, syms, _, _ = trained
    bad = syms[1]
    damage((models / bad).resolve())
    days = store.market.trading_days()[-3:]
    with store.db.transaction() as conn:  # a fresh prediction table for this case
        conn.exec_driver_sql("DELETE FROM ml_predictions")
    report = backfill_predictions(
        store, start=days[0], end=days[-1], symbols=syms, mode="current", models_dir=models,
        blend_ratio=0.5, ml_enabled=True,
    )  # fmt: skip
    assert reason in report.load_errors[bad]
    rows = store.signals.get_ml_predictions().set_index("symbol")
    assert len(rows) == 3 * len(days)
    broken = rows.loc[[bad]]
    assert broken["fallback"].str.startswith("model load error").all()
    assert broken["fallback"].str.contains(reason.split(";")[0], regex=False).all()
    assert broken["predicted_return"].isna().all()
    assert (broken["blended_score"] == broken["wavelet_score"]).all()
    ok = rows.drop(index=bad)
    version = (models / syms[0]).resolve().name
    assert ok["predicted_return"].notna().all() and ok["fallback"].isna().all()
    assert (ok.loc[[syms[0]], "model_id"] == f"current:{version}").all()
    assert (rows["model_mode"] == "current").all()


def test_stale_temp_folder_of_a_killed_save_is_ignored(trained, models):
    store, syms, _, _ = trained
    vdir = models / ".versions" / syms[0]
    tmp = vdir / ".tmp-20990101T000000-deadbeef"
    tmp.mkdir()
    (tmp / "nn_model.keras").write_bytes(b"half")  # a save killed after its first file
    predictor = Predictor(ModelStore(models))
    assert predictor.load(syms) == {}
    assert predictor.symbols == sorted(syms)
