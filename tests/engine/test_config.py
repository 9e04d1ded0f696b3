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


# -- hardening (issue 15): every bad file refused with a one-line error naming file, key, line ----
def _refused(path: Path, *expected: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg and len(msg.splitlines()) == 1, msg
    for part in expected:
        assert part in msg, msg
    return msg


def test_impossible_date_names_key_and_line(tmp_path):
    _refused(_write(tmp_path, BASE.replace("2019-01-01", "2019-02-30")), "start (line 2)", "day")
    _refused(_write(tmp_path, BASE + "rebalance: {every: days, n_days: 2022-13-01}\n"),
             "rebalance.n_days (line 9)")  # fmt: skip


def test_dates_are_dates_not_numbers(tmp_path):
    _refused(_write(tmp_path, BASE.replace("2019-01-01", "1546300800")), "start (line 2)")
    _refused(_write(tmp_path, BASE.replace("2019-01-01", "true")), "start (line 2)")


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",  # a binary file
        "start: 2019-01-01\nname: caf\xe9\n".encode("latin-1"),  # not UTF-8 (line 2)
        b"start: 2019-01-01\x00\x01\nend: 2020-01-01\n",  # UTF-8, but control characters
    ],
)
def test_binary_or_non_utf8_file_is_named(tmp_path, raw):
    p = tmp_path / "c.yaml"
    p.write_bytes(raw)
    msg = _refused(p)
    assert "line" in msg
    if b"caf" in raw:
        assert "line 2" in msg and "UTF-8" in msg


def test_unreadable_file_is_named(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    _refused(tmp_path / "d.yaml")


def test_duplicate_keys_are_refused_naming_both_lines(tmp_path):
    _refused(_write(tmp_path, BASE + "end: 2021-01-01\n"), "duplicate key 'end'", "lines 3 and 9")
    text = BASE.replace("  blend_ratio: 0.4\n", "  blend_ratio: 0.4\n  blend_ratio: 0.9\n")
    _refused(_write(tmp_path, text), "ml.blend_ratio", "lines 8 and 9")
    text = BASE.replace("params: {n: 5}", "params: {n: 5, n: 6}")
    _refused(_write(tmp_path, text), "strategy.params.n", "line 6")


def test_merge_keys_may_override(tmp_path):
    text = BASE + "costs: &c {commission_bps: 2.0}\nlive: {poll_seconds: 5}\n"
    assert load_config(_write(tmp_path, text)).costs.commission_bps == 2.0
    text = "x: &m {start: 2019-01-01, end: 2019-06-01}\n"
    with pytest.raises(ConfigError, match="x"):  # unknown key x, but no false duplicate
        load_config(_write(tmp_path, text + "<<: *m\nend: 2020-01-01\n"))
    cfg = {"start": "2019-01-01", "end": "2020-01-01", "costs": {"commission_bps": 3.0}}
    assert RunConfig.model_validate(cfg).costs.commission_bps == 3.0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("params: {n: 5}", "params: {n: true}", "params.n"),
        ("params: {n: 5}", "params: {n: '5'}", "params.n"),
        ("params: {n: 5}", "params: {n: 5.0}", "params.n"),
        ("params: {n: 5}", "params: {n: 5, min_score: yes}", "params.min_score"),
        ("blend_ratio: 0.4", "blend_ratio: true", "ml.blend_ratio (line 8)"),
        ("name: t", "name: t\ninitial_cash: .inf", "initial_cash (line 2)"),
        ("blend_ratio: 0.4", "blend_ratio: 0.4\n  enabled: 1", "ml.enabled (line 9)"),
        ("blend_ratio: 0.4", "blend_ratio: 0.4\n  horizon_days: on", "ml.horizon_days (line 9)"),
        ("name: t", "name: t\ncosts: {commission_bps: false}", "costs.commission_bps (line 2)"),
        ("name: t", "name: t\ncosts: {slippage_bps: .inf}", "costs.slippage_bps (line 2)"),
        ("name: t", "name: t\ncosts: {fractional: 0}", "costs.fractional (line 2)"),
        ("name: t", "name: t\ninitial_cash: true", "initial_cash (line 2)"),
        ("name: t", "name: t\nseed: true", "seed (line 2)"),
        ("name: t", "name: t\ndata: {demo_seed: true}", "data.demo_seed (line 2)"),
        ("name: t", "name: t\nlive: {poll_seconds: true}", "live.poll_seconds (line 2)"),
    ],
)
def test_booleans_and_strings_are_not_numbers(tmp_path, old, new, expected):
    assert old in BASE
    _refused(_write(tmp_path, BASE.replace(old, new, 1)), expected)


def test_integers_are_accepted_where_floats_are_expected(tmp_path):
    text = BASE.replace("blend_ratio: 0.4", "blend_ratio: 1") + "initial_cash: 100000\n"
    cfg = load_config(_write(tmp_path, text))
    assert cfg.ml.blend_ratio == 1.0 and cfg.initial_cash == 100_000.0


@pytest.mark.parametrize("bad", ["aapl", "BRK/B", "A..B", "../etc", "ÄPFEL", "TOOLONGSYMBOL12345"])
def test_universe_symbols_follow_the_symbol_rule(tmp_path, bad):
    text = BASE + f"universe:\n  kind: list\n  symbols:\n    - AAPL\n    - {bad!r}\n"
    _refused(_write(tmp_path, text), "universe.symbols[1] (line 13)", "invalid symbol")
    ok = BASE + "universe: {kind: list, symbols: [AAPL, BRK.B, ^GSPC, ES=F]}\n"
    assert load_config(_write(tmp_path, ok)).universe.symbols[1] == "BRK.B"


def test_benchmark_follows_the_symbol_rule(tmp_path):
    path = _write(tmp_path, BASE + "benchmark: s&p 500\n")
    _refused(path, "benchmark (line 9)", "invalid symbol")


def _bomb(levels: int = 8, width: int = 9, indent: str = "  ") -> str:
    lines = [f"{indent}- &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{indent}- &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    import time
    import tracemalloc

    bomb = "params:\n    n:\n" + _bomb(indent="    ")
    path = _write(tmp_path, BASE.replace("params: {n: 5}", bomb))
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        _refused(path, "strategy.params.n", "aliases", "line")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2.0 and peak < 20_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &a [1, *a]\n", "alias"),  # an alias inside its own anchor: a cycle
        ("start: " + "[" * 3000 + "\n", "nested"),
        ("start: " + "[" * 70 + "]" * 70 + "\n", "start[0][0]"),
        ("- &a0 [x]\n" + "".join(f"- &a{i} [*a{i - 1}]\n" for i in range(1, 70)), "nested"),
        ("seed: " + "9" * 5000 + "\n", "seed (line 1)"),
        ("name: !!python/object:os.system x\n", "line 1"),
        ("a: 1\n---\nb: 2\n", "line"),
        (BASE + "data: {imports: 5}\n", "data.imports (line 9)"),
        (BASE + 'data: {imports: [{path: "a\\0b"}]}\n', "data.imports[0].path (line 9)"),
        (BASE + 'output: "runs/\\0x"\n', "output (line 9)"),
        (BASE + '"bad\\nkey": 1\n', "line 9"),
    ],
)
def test_odd_documents_are_refused_cleanly(tmp_path, text, expected):
    _refused(_write(tmp_path, text), expected)


def test_oversized_file_is_refused(tmp_path):
    from engine.config import MAX_CONFIG_BYTES

    _refused(_write(tmp_path, BASE + "#" * MAX_CONFIG_BYTES + "\n"), "larger than")


@pytest.mark.parametrize("word", ["off", "Off", "OFF", "no", "false", '"off"'])
def test_ml_mode_off_as_written_in_yaml(tmp_path, word):
    # YAML 1.1 reads a bare off (or no, false) as the boolean false: it still means mode off
    cfg = load_config(_write(tmp_path, BASE + f"  mode: {word}\n"))
    assert cfg.ml.mode == "off" and not cfg.ml.active
    quoted = load_config(_write(tmp_path, BASE + "  mode: 'off'\n"))
    assert cfg.config_hash() == quoted.config_hash()


@pytest.mark.parametrize("word", ["on", "true", "offf", "walk-forward"])
def test_a_bad_ml_mode_lists_the_valid_ones(tmp_path, word):
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, BASE + f"  mode: {word}\n"))
    assert "ml.mode (line 9)" in str(exc.value)
    assert "'walk_forward', 'current' or 'off'" in str(exc.value)
