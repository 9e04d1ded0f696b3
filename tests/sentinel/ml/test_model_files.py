"""Model store: round trip, refusal of bad folders, atomic replacement under a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sentinel.ml.errors import ModelLoadError
from sentinel.ml.model_files import MODEL_FILES, ModelStore, serialize
from tests.sentinel.ml.conftest import make_data


@pytest.fixture
def store(tmp_path, trained_many):
    st = ModelStore(tmp_path / "ml_models")
    st.save("S0", trained_many["S0"].model, {"metrics": trained_many["S0"].metrics})
    return st


def test_round_trip_predicts_the_same(store, trained_many):
    X = make_data(30, seed=11)[0]
    loaded = store.load("S0")
    assert sorted(os.listdir(store.root / "S0")) == sorted(MODEL_FILES)
    np.testing.assert_allclose(loaded.model.predict(X), trained_many["S0"].model.predict(X))
    meta = store.read_metadata("S0")["ensemble"]
    assert meta["symbol"] == "S0" and meta["format_version"] == 1
    assert meta["metrics"]["validation_rmse"] == trained_many["S0"].metrics["validation_rmse"]
    assert store.symbols() == ["S0"]


def test_resave_replaces_and_collects_old_versions(store, trained_many):
    store.save("S0", trained_many["S1"].model)
    X = make_data(10, seed=12)[0]
    np.testing.assert_allclose(
        store.load("S0").model.predict(X), trained_many["S1"].model.predict(X)
    )
    assert len(list((store.root / ".versions" / "S0").iterdir())) == 1


def _folder(store):
    return (store.root / "S0").resolve()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "xgb_scaler.json").unlink(), "missing"),
        (lambda f: (f / "model.pkl").write_bytes(b"x"), "unexpected"),
        (lambda f: (f / "nn_metadata.json").write_text("{not json"), "not valid JSON"),
        (lambda f: (f / "nn_model.keras").write_bytes(b"PK\x03\x04 half"), "checksum"),
        (
            lambda f: (f / "xgb_model.json").write_bytes((f / "xgb_model.json").read_bytes()[:100]),
            "checksum",
        ),
    ],
)
def test_damaged_folder_raises_model_load_error(store, damage, message):
    damage(_folder(store))
    with pytest.raises(ModelLoadError, match=message) as info:
        store.load("S0")
    assert "S0" in str(info.value)


def test_symbol_mismatch_and_missing_model(store):
    f = _folder(store)
    meta = json.loads((f / "xgb_metadata.json").read_text())
    meta["symbol"] = "OTHER"
    (f / "xgb_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="OTHER"):
        store.load("S0")
    with pytest.raises(ModelLoadError, match="no model folder"):
        store.load("NOPE")


def test_corrupt_keras_with_matching_checksum_is_still_refused(store):
    f = _folder(store)
    (f / "nn_model.keras").write_bytes(b"garbage")
    meta = json.loads((f / "ensemble_metadata.json").read_text())
    import hashlib

    meta["files"]["nn_model.keras"] = hashlib.sha256(b"garbage").hexdigest()
    (f / "ensemble_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="nn_model.keras"):
        store.load("S0")


_WRITER = """
import sys, pathlib
from sentinel.ml.model_files import ModelStore
root, src = sys.argv[1], pathlib.Path(sys.argv[2])
sets = [{n: (src / str(i) / n).read_bytes() for n in sys.argv[3].split(",")} for i in (0, 1)]
store = ModelStore(root)
print("ready", flush=True)
i = 0
while True:
    store.write_files("S0", sets[i % 2])
    i += 1
"""


def test_sigkill_mid_save_leaves_a_complete_model(tmp_path, trained_many):
    """A writer saving in a loop is SIGKILLed at random moments; every state must load whole."""
    src = tmp_path / "src"
    models = [trained_many["S0"].model, trained_many["S1"].model]
    for i, m in enumerate(models):
        (src / str(i)).mkdir(parents=True)
        for name, blob in serialize("S0", m).items():
            (src / str(i) / name).write_bytes(blob)
    X = make_data(8, seed=13)[0]
    expected = [m.predict(X) for m in models]
    store = ModelStore(tmp_path / "ml_models")
    store.write_files("S0", {n: (src / "0" / n).read_bytes() for n in MODEL_FILES})
    rng = np.random.default_rng(0)
    seen, interrupted = set(), 0
    for attempt in range(4):
        env = dict(os.environ)
        # every other run pauses after each file: the kill then lands mid-version for sure
        env["SENTINEL_ML_STORE_TEST_PAUSE"] = "0.05" if attempt % 2 else "0"
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store.root), str(src), ",".join(MODEL_FILES)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        pred = store.load("S0").model.predict(X)
        match = [np.allclose(pred, e) for e in expected]
        assert any(match)
        seen.add(match.index(True))
        interrupted += bool(list((store.root / ".versions" / "S0").glob(".tmp-*")))
        store.gc("S0", stale_after=0)
        versions = [p for p in (store.root / ".versions" / "S0").iterdir()]
        assert [p.resolve() for p in versions] == [_folder(store)]
    assert interrupted >= 1  # at least one kill really landed in the middle of a version
