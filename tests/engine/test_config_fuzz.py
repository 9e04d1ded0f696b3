"""Fuzz the config loaders: any file either loads or is refused with a one-line ConfigError
naming the file; no other exception escapes, and no example takes long (bounded examples)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.config import RunConfig, load_config
from engine.sweep import SweepConfig, expand, load_sweep
from sentinel.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(  # SENTINEL_FUZZ_EXAMPLES=5000 for a longer hunt
    max_examples=int(os.environ.get("SENTINEL_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS = 3.0  # per example, generous for a loaded 2-core machine

KEYS = [
    "name", "start", "end", "strategy", "params", "n", "min_score", "ml", "blend_ratio", "mode",
    "enabled", "costs", "commission_bps", "fractional", "universe", "symbols", "kind", "data",
    "imports", "path", "grid", "base", "variants", "set", "selection", "test", "executor",
    "workers", "seed", "initial_cash", "benchmark", "rebalance", "every", "n_days", "output",
    "ml.blend_ratio", "strategy.params.n", "universe.symbols", "<<", '"?"', '""', '"a\\nb"',
    "1", "2019-02-30",
]  # fmt: skip
ODD_SCALARS = [
    "2019-01-01", "2019-02-30", "2019-13-01", "2019-01-01 10:00:00", "0000-00-00", "true", "no",
    "on", "~", "null", "''", "0x1F", "0o17", "0b101", "1_000", "1:20", "190:20:30", ".inf",
    "-.inf", ".nan", "1e999", "-0", "0.5", "5", "-5", "9" * 5000, "'5'", '"\\n\\0\\x85\\u2028"',
    "!!binary aGVsbG8=", "!!str 5", "!!int x", "!!float abc", "!!bool maybe", "!!timestamp x",
    "!!timestamp 2019-02-30", "!!python/object:os.system x", "!!set {a, b}", "!!omap [a: 1]",
    "!foo x", "AAPL", "aapl", "BRK/B", "top_n", "walk_forward", "weekly", "list", "dask",
    "base.yaml", "../x.yaml", "'a\\0b'",
]  # fmt: skip
BREAKERS = ["*undefined", "[", "]", "{", "}", "- x", "? x", "|", ">", "#", "&", "%", "@", "`", "'"]
VALID_RUN = "name: t\nstart: 2019-01-01\nend: 2020-01-01\nstrategy: {name: top_n, params: {n: 5}}\n"
VALID_SWEEP = (
    "base: {start: 2019-01-01, end: 2020-01-01}\ngrid:\n  ml.blend_ratio: [0.1, 0.5]\n"
    "selection: {start: 2019-01-01, end: 2019-06-28}\ntest: {start: 2019-07-01, end: 2019-12-31}\n"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "base.yaml").write_text(VALID_RUN)
    return path


def _scalar() -> st.SearchStrategy[str]:
    text = st.text(max_size=12).map(json.dumps)  # any string, as a double-quoted YAML scalar
    number = st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True)).map(str)
    common = st.one_of(st.sampled_from(ODD_SCALARS), text, number)
    # now and then a character that breaks the syntax; mostly documents that parse
    return st.integers(0, 49).flatmap(lambda i: st.sampled_from(BREAKERS) if i == 0 else common)


@st.composite
def yaml_docs(draw, top_keys: list[str]) -> str:
    """A random flow-style YAML document with anchors, aliases (some undefined) and repeats."""
    anchors: list[str] = []

    def node(depth: int) -> str:
        kind = draw(st.sampled_from(["scalar", "map", "seq", "alias"] if depth < 4 else ["scalar"]))
        if kind == "alias" and anchors and draw(st.booleans()):
            return "*" + draw(st.sampled_from(anchors))
        anchor = ""
        if draw(st.integers(0, 4)) == 0:
            anchor = f"&a{len(anchors)} "
            anchors.append(anchor[1:-1])  # usable inside itself too: a cycle
        if kind == "map":
            n = draw(st.integers(0, 4))
            items = [f"{draw(st.sampled_from(KEYS))}: {node(depth + 1)}" for _ in range(n)]
            text = "{" + ", ".join(items) + "}"
        elif kind == "seq":
            text = "[" + ", ".join(node(depth + 1) for _ in range(draw(st.integers(0, 4)))) + "]"
        else:
            text = draw(_scalar())
        return anchor + text

    lines = []
    for _ in range(draw(st.integers(0, 6))):
        lines.append(f"{draw(st.sampled_from(top_keys))}: {node(0)}")
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` with a few random edits (odd scalars or any characters) at random places."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 6))
        odd = st.sampled_from(ODD_SCALARS + BREAKERS)
        insert = draw(st.one_of(odd, st.text(max_size=4)))
        text = text[:at] + insert + text[at + cut :]
    return text


RUN_KEYS = list(RunConfig.model_fields) + ["ml", "bogus", "<<"]
SWEEP_KEYS = list(SweepConfig.model_fields) + ["bogus", "<<"]


def _check(load, path: Path) -> None:
    t0 = time.perf_counter()
    try:
        load(path)
        event("loaded")
    except ConfigError as exc:
        msg = str(exc)
        assert str(path) in msg, msg
        assert len(msg.splitlines()) == 1 and msg.strip(), repr(msg)
        event("refused: " + ("invalid YAML" if "invalid YAML" in msg else "validation"))
    assert time.perf_counter() - t0 < SECONDS


def _sweep(path: Path) -> None:
    expand(load_sweep(path))


def _write(folder: Path, name: str, data: str | bytes) -> Path:
    path = folder / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_bytes(data.encode("utf-8", "surrogatepass"))
    return path


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_random_bytes(folder, raw):
    _check(load_config, _write(folder, "bytes.yaml", raw))
    _check(_sweep, _write(folder, "bytes.yaml", raw))


@SETTINGS
@given(doc=yaml_docs(RUN_KEYS), prefix=st.booleans())
def test_random_run_configs(folder, doc, prefix):
    text = ("start: 2019-01-01\nend: 2020-01-01\n" if prefix else "") + doc
    _check(load_config, _write(folder, "run.yaml", text))


@SETTINGS
@given(doc=yaml_docs(SWEEP_KEYS), prefix=st.sampled_from(["", "base: base.yaml\n", VALID_SWEEP]))
def test_random_sweep_configs(folder, doc, prefix):
    _check(_sweep, _write(folder, "sweep.yaml", prefix + doc))


@SETTINGS
@given(text=mutated((ROOT / "configs" / "walk_forward.yaml").read_text()))
def test_mutated_run_configs(folder, text):
    _check(load_config, _write(folder, "mutated.yaml", text))


@SETTINGS
@given(text=mutated(VALID_SWEEP))
def test_mutated_sweep_configs(folder, text):
    _check(_sweep, _write(folder, "mutated_sweep.yaml", text))
