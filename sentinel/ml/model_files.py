"""Model files on disk (not the SQL store :mod:`sentinel.db`): per-symbol folders that
are safe to load and replaced atomically.

Layout::

    {root}/{symbol}            -> symlink to .versions/{symbol}/{version}
    {root}/.versions/{symbol}/{version}/   the seven files below, never modified once renamed

A save writes a new version into a temporary folder, fsyncs every file and the folder, renames
it to its final name, then swaps the symbol's symlink with ``os.replace`` of a fresh symlink:
atomic on POSIX, so a process killed at any moment leaves either the old or the new complete
version. Old versions are removed after the swap. Nothing is unpickled: scalers are JSON, the
network loads with Keras ``safe_mode=True`` and the booster from JSON; every file's SHA-256 is
recorded in ``ensemble_metadata.json`` (written last) and checked on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.files import fsync_path
from sentinel.ml._scaler import scaler_from_json, scaler_to_json
from sentinel.ml.ensemble import EnsembleModel
from sentinel.ml.errors import MLError, ModelLoadError
from sentinel.ml.nn import NNRegressor
from sentinel.ml.xgb import XGBRegressorModel
from sentinel.symbols import SYMBOL_RULE, is_valid_symbol

FORMAT_VERSION = 1
MODEL_FILES = (
    "nn_model.keras",
    "xgb_model.json",
    "nn_metadata.json",
    "xgb_metadata.json",
    "ensemble_metadata.json",
    "nn_scaler.json",
    "xgb_scaler.json",
)
#: The pooled model's own metadata file (written last; lists every other file's checksum).
POOLED_FILE = "pooled_metadata.json"
#: The reserved folder name of the pooled model (never a valid symbol: see sentinel.symbols).
POOLED = "_pooled"
_VERSIONS = ".versions"
_TMP_PREFIX = ".tmp-"
# Test hook: seconds to sleep after each file is written (lets a test SIGKILL mid-save).
_PAUSE_ENV = "SENTINEL_ML_STORE_TEST_PAUSE"


def check_symbol(symbol: str) -> str:
    """The one symbol rule (:mod:`sentinel.symbols`): no name that could escape the root,
    collide with the internal ``.versions``/``.tmp-`` folders or differ only in case."""
    if not is_valid_symbol(symbol):
        raise MLError(f"invalid symbol for a model folder: {symbol!r} ({SYMBOL_RULE})")
    return symbol


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False).encode()


def _check_ensemble_files(folder: Path, data: dict[str, bytes], symbol: str) -> dict[str, Any]:
    """The parsed JSON files of one ensemble's seven, checked: format, symbol, checksums."""
    metas: dict[str, Any] = {}
    for name in ("ensemble_metadata.json", "nn_metadata.json", "xgb_metadata.json",
                 "nn_scaler.json", "xgb_scaler.json"):  # fmt: skip
        try:
            metas[name] = json.loads(data[name])
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelLoadError(folder, f"{name} is not valid JSON: {exc}") from exc
        if not isinstance(metas[name], dict):
            raise ModelLoadError(folder, f"{name} is not a JSON object")
        if metas[name].get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(
                folder,
                f"{name} has format_version {metas[name].get('format_version')!r}, "
                f"this code reads {FORMAT_VERSION}",
            )
        if metas[name].get("symbol") != symbol:
            raise ModelLoadError(
                folder, f"{name} is for symbol {metas[name].get('symbol')!r}, not {symbol!r}"
            )
    sums = metas["ensemble_metadata.json"].get("files") or {}
    for name in MODEL_FILES:
        if name == "ensemble_metadata.json":
            continue
        if sums.get(name) != _sha256(data[name]):
            raise ModelLoadError(folder, f"{name} does not match its recorded checksum")
    return metas


@dataclass
class ModelHealth:
    """A symbol's model as :meth:`ModelStore.verify` finds it on disk (nothing loaded)."""

    symbol: str
    version: str | None  # the current version folder; None without one
    problem: str | None  # why the model cannot be used; None when every check passes
    metadata: dict[str, Any] | None = None  # ensemble_metadata.json once it could be read

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class StoredModel:
    """A loaded ensemble with its metadata files (``nn``, ``xgb``, ``ensemble``)."""

    symbol: str
    model: Any
    metadata: dict[str, dict[str, Any]]
    folder: Path


def serialize(symbol: str, model: Any, metadata: dict[str, Any] | None = None) -> dict[str, bytes]:
    """The seven files of a fitted :class:`EnsembleModel` as bytes (imports Keras).

    ``metadata`` (metrics, training window, features, ...) goes into ``ensemble_metadata.json``;
    the member files get their own hyperparameters and fit details.
    """
    return _serialize(check_symbol(symbol), model, metadata)


def _serialize(symbol: str, model: Any, metadata: dict[str, Any] | None) -> dict[str, bytes]:
    """:func:`serialize` for any name, the reserved ``_pooled`` included (no symbol check)."""
    if not hasattr(model, "nn_"):
        raise MLError(f"cannot save an unfitted model for {symbol}")
    meta = dict(metadata or {})
    now = meta.pop("trained_at", None) or datetime.now(UTC).isoformat(timespec="seconds")
    nn, xgb = model.nn_, model.xgb_
    n_feat = int(model.n_features_in_)
    features = meta.pop("features", None) or [f"f{i}" for i in range(n_feat)]
    if len(features) != n_feat:
        raise MLError(f"{symbol}: {len(features)} feature names for {n_feat} features")
    common = {"format_version": FORMAT_VERSION, "symbol": symbol, "trained_at": now}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nn_model.keras"
        nn.to_keras().save(path)
        keras_bytes = path.read_bytes()
    files: dict[str, bytes] = {
        "nn_model.keras": keras_bytes,
        "xgb_model.json": bytes(xgb.booster_.save_raw("json")),
        "nn_scaler.json": _json_bytes({**common, **scaler_to_json(nn.scaler_)}),
        "xgb_scaler.json": _json_bytes({**common, **scaler_to_json(xgb.scaler_)}),
        "nn_metadata.json": _json_bytes(
            {
                **common,
                "model_type": "nn",
                "features": list(features),
                "hyperparameters": nn.get_params(),
                "n_samples": nn.n_samples_,
                "best_epoch": nn.best_epoch_,
                "n_epochs": nn.n_epochs_,
                "best_val_loss": nn.best_val_loss_,
            }
        ),
        "xgb_metadata.json": _json_bytes(
            {
                **common,
                "model_type": "xgb",
                "features": list(features),
                "hyperparameters": xgb.get_params(),
                "n_samples": xgb.n_samples_,
            }
        ),
    }
    files["ensemble_metadata.json"] = _json_bytes(
        {
            **meta,
            **common,
            "model_type": "ensemble",
            "features": list(features),
            "weights": {"nn": model.nn_weight, "xgb": 1.0 - model.nn_weight},
            "n_samples": nn.n_samples_,
            "files": {name: _sha256(data) for name, data in sorted(files.items())},
        }
    )
    return files


class ModelStore:
    """Folder of per-symbol models; see the module docstring for the layout and guarantees."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- writing ----------------------------------------------------------------------------
    def save(self, symbol: str, model: Any, metadata: dict[str, Any] | None = None) -> Path:
        """Serialise and atomically install a new version; returns the version folder."""
        return self.write_files(symbol, serialize(symbol, model, metadata))

    def write_files(self, symbol: str, files: dict[str, bytes]) -> Path:
        """Install prepared files as the symbol's new version (the atomic part of ``save``)."""
        check_symbol(symbol)
        if set(files) != set(MODEL_FILES):
            raise MLError(f"{symbol}: expected files {sorted(MODEL_FILES)}, got {sorted(files)}")
        return self._install(symbol, files, "ensemble_metadata.json")

    def _install(self, symbol: str, files: dict[str, bytes], last: str) -> Path:
        """Write ``files`` (relative paths) into a new version, ``last`` last; swap the link."""
        pause = float(os.environ.get(_PAUSE_ENV, "0") or 0)
        vdir = self.root / _VERSIONS / symbol
        vdir.mkdir(parents=True, exist_ok=True)
        version = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        tmp = vdir / f"{_TMP_PREFIX}{version}"
        tmp.mkdir()
        # the metadata file last: it lists the checksums of the others
        for name in sorted(files, key=lambda n: n == last):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp / name, "wb") as fh:
                fh.write(files[name])
                fh.flush()
                os.fsync(fh.fileno())
            if pause:
                time.sleep(pause)
        for sub in sorted({(tmp / n).parent for n in files} - {tmp}, key=lambda p: -len(p.parts)):
            fsync_path(sub)
        fsync_path(tmp)
        final = vdir / version
        os.rename(tmp, final)
        fsync_path(vdir)
        link = self.root / symbol
        if link.exists() and not link.is_symlink():  # legacy plain folder from the notes
            os.rename(link, vdir / f"legacy-{version}")
        tmp_link = self.root / f"{_TMP_PREFIX}{symbol}-{uuid.uuid4().hex[:8]}"
        os.symlink(os.path.join(_VERSIONS, symbol, version), tmp_link)
        os.replace(tmp_link, link)
        fsync_path(self.root)
        self._gc(symbol)
        return final

    def gc(self, symbol: str, *, stale_after: float = 3600.0) -> list[Path]:
        """Delete versions other than the current one; unfinished temp folders once stale.

        A temp folder younger than ``stale_after`` seconds may belong to a concurrent save.
        """
        return self._gc(check_symbol(symbol), stale_after=stale_after)

    def _gc(self, symbol: str, *, stale_after: float = 3600.0) -> list[Path]:
        vdir = self.root / _VERSIONS / symbol
        current = self._current(symbol)
        removed = []
        if not vdir.is_dir():
            return removed
        now = time.time()
        for entry in vdir.iterdir():
            if current is not None and entry.resolve() == current.resolve():
                continue
            if entry.name.startswith(_TMP_PREFIX) and now - entry.stat().st_mtime < stale_after:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        return removed

    # -- reading ----------------------------------------------------------------------------
    def _current(self, symbol: str) -> Path | None:
        link = self.root / symbol
        return link if link.exists() else None

    def symbols(self) -> list[str]:
        """Symbols that have a current model folder."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and p.is_dir() and is_valid_symbol(p.name)
        )

    def exists(self, symbol: str) -> bool:
        """Whether ``symbol`` has a current model folder."""
        return self._current(check_symbol(symbol)) is not None

    def _verified_files(self, symbol: str) -> tuple[Path, dict[str, bytes], dict[str, Any]]:
        folder = self.root / check_symbol(symbol)
        if not folder.exists():
            raise ModelLoadError(folder, "no model folder (train the symbol first)")
        try:
            present = {p.name for p in folder.iterdir()}
            data = {n: (folder / n).read_bytes() for n in MODEL_FILES if n in present}
        except OSError as exc:
            raise ModelLoadError(folder, f"unreadable: {exc}") from exc
        missing = sorted(set(MODEL_FILES) - present)
        if missing:
            raise ModelLoadError(folder, f"missing file(s) {missing}")
        extra = sorted(present - set(MODEL_FILES))
        if extra:
            raise ModelLoadError(folder, f"unexpected file(s) {extra}; refusing to load")
        return folder, data, _check_ensemble_files(folder, data, symbol)

    def read_metadata(self, symbol: str) -> dict[str, dict[str, Any]]:
        """Validated metadata only (no TensorFlow import): for listings and the API."""
        _, _, metas = self._verified_files(symbol)
        return {
            "ensemble": metas["ensemble_metadata.json"],
            "nn": metas["nn_metadata.json"],
            "xgb": metas["xgb_metadata.json"],
        }

    def verify(self, symbol: str) -> ModelHealth:
        """Check a symbol's current model without loading it (no TensorFlow): never raises.

        The checks of :meth:`read_metadata` (every file present, no extra one, checksums,
        metadata for this symbol and format), the scalers' shapes, and that the network file is
        a Keras archive: what listings (``sentinel ml status``, ``/api/ml/models``) report.
        """
        link = self.root / str(symbol)
        version = link.resolve().name if link.is_symlink() or link.is_dir() else None
        try:
            folder, data, metas = self._verified_files(symbol)
        except (ModelLoadError, MLError) as exc:
            problem = exc.problem if isinstance(exc, ModelLoadError) else str(exc)
            return ModelHealth(str(symbol), version, problem)
        ens = metas["ensemble_metadata.json"]
        n_feat = len(ens.get("features") or [])
        for name in ("nn_scaler.json", "xgb_scaler.json"):
            try:
                scaler_from_json(metas[name], n_feat)
            except ValueError as exc:
                return ModelHealth(str(symbol), version, f"{name} {exc}", ens)
        try:
            with zipfile.ZipFile(io.BytesIO(data["nn_model.keras"])) as archive:
                if "config.json" not in archive.namelist():
                    raise zipfile.BadZipFile("no config.json")
        except zipfile.BadZipFile as exc:
            return ModelHealth(str(symbol), version, f"nn_model.keras is not a Keras file: {exc}",
                               ens)  # fmt: skip
        return ModelHealth(str(symbol), version, None, ens)

    def load(self, symbol: str) -> StoredModel:
        """Load and validate a symbol's ensemble; any problem raises :class:`ModelLoadError`."""
        folder, data, metas = self._verified_files(symbol)
        model, meta = _build_ensemble(folder, data, metas)
        return StoredModel(symbol, model, meta, folder.resolve())

    # -- the pooled model (ml.model pooled / hierarchical) ------------------------------------
    def save_pooled(self, predictor: Any, metadata: dict[str, Any] | None = None) -> Path:
        """Atomically install a :class:`~sentinel.ml.pooled.PooledPredictor` as ``_pooled``.

        Layout of a version: ``pooled/`` (the pooled ensemble's seven files), for hierarchical
        ``residuals/{symbol}/`` (each residual ensemble's seven) and ``pooled_metadata.json``
        (written last): kind, target, features, residual weights, ``metadata`` (metrics,
        training window) and every other file's SHA-256.
        """
        meta = dict(metadata or {})
        now = meta.pop("trained_at", None) or datetime.now(UTC).isoformat(timespec="seconds")
        features = meta.pop("features", None)
        member = {"features": features, "trained_at": now}
        files = {f"pooled/{n}": b for n, b in _serialize(POOLED, predictor.pooled, member).items()}
        for sym, model in sorted(predictor.residual_models.items()):
            for n, b in serialize(sym, model, member).items():
                files[f"residuals/{sym}/{n}"] = b
        n_feat = int(predictor.pooled.n_features_in_)
        files[POOLED_FILE] = _json_bytes(
            {
                **meta,
                "format_version": FORMAT_VERSION,
                "symbol": POOLED,
                "model_type": predictor.kind,
                "kind": predictor.kind,
                "target": predictor.target,
                "trained_at": now,
                "features": list(features or [f"f{i}" for i in range(n_feat)]),
                "residual_weights": {
                    s: float(predictor.weights[s]) for s in sorted(predictor.residual_models)
                },  # fmt: skip
                "files": {name: _sha256(b) for name, b in sorted(files.items())},
            }
        )
        return self._install(POOLED, files, POOLED_FILE)

    def has_pooled(self) -> bool:
        """Whether a pooled model is installed (``{root}/_pooled`` exists)."""
        return self._current(POOLED) is not None

    def _verified_pooled(self) -> tuple[Path, dict[str, Any], dict[str, dict[str, Any]]]:
        """The pooled version's folder, ``pooled_metadata.json`` and each member's metadata."""
        folder = self.root / POOLED
        if not folder.exists():
            raise ModelLoadError(folder, "no pooled model (train one: sentinel ml train --model)")
        try:
            present = {
                p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()
            }
            meta_bytes = (folder / POOLED_FILE).read_bytes() if POOLED_FILE in present else None
        except OSError as exc:
            raise ModelLoadError(folder, f"unreadable: {exc}") from exc
        if meta_bytes is None:
            raise ModelLoadError(folder, f"missing file {POOLED_FILE}")
        try:
            meta = json.loads(meta_bytes)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelLoadError(folder, f"{POOLED_FILE} is not valid JSON: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(folder, f"{POOLED_FILE}: not a format {FORMAT_VERSION} record")
        if meta.get("symbol") != POOLED or meta.get("kind") not in ("pooled", "hierarchical"):
            raise ModelLoadError(folder, f"{POOLED_FILE} does not describe a pooled model")
        sums = meta.get("files") or {}
        listed = set(sums) | {POOLED_FILE}
        if set(present) != listed:
            missing, extra = sorted(listed - set(present)), sorted(set(present) - listed)
            raise ModelLoadError(folder, f"missing file(s) {missing}, unexpected {extra}")
        residuals = sorted(meta.get("residual_weights") or {})
        bad = [s for s in residuals if not is_valid_symbol(s)]
        if bad:
            raise ModelLoadError(folder, f"residual models of invalid symbols {bad}")
        members = {"pooled": POOLED, **{f"residuals/{s}": s for s in residuals}}
        expected = {f"{m}/{n}" for m in members for n in MODEL_FILES}
        if set(sums) != expected:
            raise ModelLoadError(folder, f"{POOLED_FILE} lists other files than its members'")
        data: dict[str, dict[str, bytes]] = {m: {} for m in members}
        for name in sorted(sums):
            blob = present[name].read_bytes()
            if sums[name] != _sha256(blob):
                raise ModelLoadError(folder, f"{name} does not match its recorded checksum")
            sub, _, base = name.rpartition("/")
            data[sub][base] = blob
        checked = {
            m: (data[m], _check_ensemble_files(folder / m, data[m], name))
            for m, name in members.items()
        }
        return folder, meta, checked  # type: ignore[return-value]

    def read_pooled_metadata(self) -> dict[str, Any]:
        """``pooled_metadata.json`` after every check of :meth:`load_pooled` but the loading."""
        return self._verified_pooled()[1]

    def verify_pooled(self) -> ModelHealth:
        """:meth:`verify` for the pooled model (no TensorFlow): never raises."""
        link = self.root / POOLED
        version = link.resolve().name if link.is_symlink() or link.is_dir() else None
        try:
            _, meta, _ = self._verified_pooled()
        except ModelLoadError as exc:
            return ModelHealth(POOLED, version, exc.problem)
        return ModelHealth(POOLED, version, None, meta)

    def load_pooled(self, kind: str | None = None, target: str | None = None) -> StoredPooled:
        """Load the pooled predictor; ``kind`` / ``target``: what the caller's run expects.

        A stored model of another kind or target raises :class:`MLError` in one line naming
        both (a pooled score is not a per-symbol one: no silent substitution).
        """
        folder, meta, members = self._verified_pooled()
        for key, want in (("kind", kind), ("target", target)):
            if want is not None and meta.get(key) != want:
                raise MLError(
                    f"ml.model {kind or meta.get('kind')}, ml.target {target or 'any'}: the "
                    f"stored pooled model in {self.root} is kind {meta.get('kind')} with target "
                    f"{meta.get('target')}; retrain it (sentinel ml train --model {kind or ''})"
                    " or change the setting"
                )
        from sentinel.ml.pooled import PooledPredictor  # lazy: the trainer imports TensorFlow

        models = {m: _build_ensemble(folder / m, d, metas)[0] for m, (d, metas) in members.items()}
        pooled = models.pop("pooled")
        weights = {s: float(w) for s, w in (meta.get("residual_weights") or {}).items()}
        residual = {m.split("/", 1)[1]: model for m, model in models.items()}
        predictor = PooledPredictor.build(pooled, residual, weights, meta["kind"], meta["target"])
        return StoredPooled(predictor, meta, folder.resolve())


@dataclass
class StoredPooled:
    """A loaded pooled predictor with its ``pooled_metadata.json``."""

    predictor: Any
    metadata: dict[str, Any]
    folder: Path


def _build_ensemble(
    folder: Path, data: dict[str, bytes], metas: dict[str, Any]
) -> tuple[EnsembleModel, dict[str, Any]]:
    """An :class:`EnsembleModel` from its seven checked files in ``folder`` (imports Keras)."""
    import xgboost as xgb_lib  # lazy: seconds to import; read_metadata must stay light

    nn_meta, xgb_meta = metas["nn_metadata.json"], metas["xgb_metadata.json"]
    ens = metas["ensemble_metadata.json"]
    n_feat = len(ens.get("features", []))
    scalers = {}
    for name in ("nn_scaler.json", "xgb_scaler.json"):
        try:
            scalers[name] = scaler_from_json(metas[name], n_feat)
        except ValueError as exc:
            raise ModelLoadError(folder, f"{name} {exc}") from exc
    try:
        from sentinel.ml._tf import keras  # lazy: TensorFlow costs seconds to import

        keras_model = keras.models.load_model(
            folder / "nn_model.keras", safe_mode=True, compile=False
        )
        nn = NNRegressor.from_keras(
            keras_model,
            scalers["nn_scaler.json"],
            nn_meta.get("hyperparameters", {}),
            n_samples=nn_meta.get("n_samples", 0),
            best_epoch=nn_meta.get("best_epoch", 0),
            n_epochs=nn_meta.get("n_epochs", 0),
            best_val_loss=nn_meta.get("best_val_loss", float("nan")),
        )
    except Exception as exc:  # noqa: BLE001 - anything Keras raises means "unusable"
        raise ModelLoadError(folder, f"nn_model.keras: {type(exc).__name__}: {exc}") from exc
    try:
        booster = xgb_lib.Booster()
        booster.load_model(bytearray(data["xgb_model.json"]))
        booster.set_param({"nthread": 1})
        xgb = XGBRegressorModel(**xgb_meta.get("hyperparameters", {}))._set_state(
            booster, scalers["xgb_scaler.json"], n_samples=xgb_meta.get("n_samples", 0)
        )
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(folder, f"xgb_model.json: {type(exc).__name__}: {exc}") from exc
    if nn.n_features_in_ != n_feat or int(booster.num_features()) != n_feat:
        raise ModelLoadError(folder, f"models do not take the {n_feat} listed features")
    w = float(ens.get("weights", {}).get("nn", 0.5))
    model = EnsembleModel(nn_weight=w).set_members(nn, xgb)
    return model, {"ensemble": ens, "nn": nn_meta, "xgb": xgb_meta}
