"""Run configs: strict, frozen, hashable; errors name the key path and the YAML line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config import RunConfig, load_config
from sentinel.errors import ConfigError

BASE = """\
name: t
start: 2019-01-01
end: 2020-01-01
strategy:
  name: top_n
  params: {n: 5}
ml:
  blend_ratio: 0.4
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_loads_and_hashes(tmp_path):
    cfg = load_config(_write(tmp_path, BASE))
    assert cfg.ml.blend_ratio == 0.4 and cfg.strategy.params == {"n": 5}
    assert cfg.config_hash() == load_config(_write(tmp_path, BASE)).config_hash()
    other = cfg.with_updates({"ml.blend_ratio": 0.5})
    assert other.ml.blend_ratio == 0.5 and other.config_hash() != cfg.config_hash()
    with pytest.raises(ValidationError):  # frozen
        cfg.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE.replace("blend_ratio: 0.4", "blend_ratio: 1.4"), "ml.blend_ratio (line 8)"),
        (BASE.replace("blend_ratio: 0.4", "blend_ratoi: 0.4"), "ml.blend_ratoi (line 8)"),
        (BASE.replace("params: {n: 5}", "params: {n: 0}"), "strategy (line 4): params.n"),
        (BASE.replace("name: top_n", "name: nope"), "unknown strategy 'nope'"),
        (BASE.replace("end: 2020-01-01", "end: 2018-01-01"), "must be after start"),
        (BASE + "bogus: 1\n", "bogus (line 9)"),
        ("start: [\n", "invalid YAML"),
    ],
)
def test_bad_values_name_key_and_line(tmp_path, text, expected):
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    assert expected in str(exc.value)
    assert str(tmp_path / "c.yaml") in str(exc.value)


def test_unknown_update_key_is_an_error():
    cfg = RunConfig.model_validate({"start": "2019-01-01", "end": "2020-01-01"})
    with pytest.raises(ConfigError, match="unknown config key 'ml.nope'|ml.nope"):
        cfg.with_updates({"ml.nope.x": 1})
    with pytest.raises(ConfigError, match="ml.nope"):
        cfg.with_updates({"ml.nope": 1})


def test_shipped_configs_are_valid():
    for path in sorted(Path("configs").glob("*.yaml")):
        if "sweep" in path.name:
            continue
        assert isinstance(load_config(path), RunConfig), path


def test_settings_fill_the_ml_keys_a_config_leaves_out(store):
    from engine.session import resolve_config, run_settings

    store.records.set_settings({"ml_wavelet_blend_ratio": 0.7, "ml_min_samples_per_symbol": 40})
    settings = run_settings(store)
    base = {"start": "2019-01-01", "end": "2020-01-01"}
    off = RunConfig.model_validate({**base, "ml": {"mode": "off"}})
    assert off.ml.blend_ratio is None  # unset: the settings decide, in one place
    eff = resolve_config(off, settings)
    assert (eff.ml.blend_ratio, eff.ml.min_samples, eff.ml.mode) == (0.7, 40, "off")
    assert resolve_config(eff, settings) == eff  # idempotent
    own = RunConfig.model_validate({**base, "ml": {"blend_ratio": 0.2}})
    assert resolve_config(own, settings).ml.blend_ratio == 0.2
    assert resolve_config(own, settings).ml.min_samples == 40
