"""Strategy plug-ins: module:Class paths, a user folder, entry points; bad ones refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import RunConfig, load_config
from sentinel.errors import ConfigError
from strategies import STRATEGIES, PlanContext, Strategy, registry
from strategies.registry import StrategyLookupError, resolve
from tests.strategies.test_strategies import _ctx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "strategies"

PLUGIN = """\
import pandas as pd
from pydantic import Field

from strategies.base import PlanContext, Strategy, StrategyParams


class FirstParams(StrategyParams):
    n: int = Field(default=1, ge=1)


class First(Strategy):
    name = "{name}"
    Params = FirstParams

    def target_weights(self, ctx: PlanContext) -> pd.Series:
        names = sorted(ctx.scores.index)[: self.params.n]
        return pd.Series(1.0 / len(names), index=names)
"""


def _config(tmp_path: Path, strategy: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(f"name: t\nstart: 2019-01-01\nend: 2020-01-01\nstrategy:\n{strategy}")
    return path


def _refused(path: Path, *parts: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message
    return message


def test_builtins_resolve_to_themselves():
    for name, cls in STRATEGIES.items():
        assert resolve(name) is cls


def test_module_class_path(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_mod.py").write_text(PLUGIN.format(name="first"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = RunConfig.model_validate(
        {"start": "2019-01-01", "end": "2020-01-01",
         "strategy": {"name": "my_plugin_mod:First", "params": {"n": 2}}}
    )  # fmt: skip
    strategy = cfg.strategy.build()
    assert type(strategy).__name__ == "First" and strategy.params.n == 2
    bad = _config(tmp_path, "  name: my_plugin_mod:First\n  params: {n: 0}\n")
    _refused(bad, "strategy (line 4): params.n")


def test_user_folder_from_config_is_relative_to_the_config(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "first.py").write_text(PLUGIN.format(name="first_folder"))
    cfg = load_config(_config(tmp_path, "  dir: plugins\n  name: first_folder\n"))
    assert Path(cfg.strategy.dir) == tmp_path / "plugins"
    assert cfg.strategy.build().name == "first_folder"
    message = _refused(
        _config(tmp_path, "  dir: plugins\n  name: frist_folder\n"),
        "strategy.name (line 6)", "unknown strategy 'frist_folder'", "first_folder", "top_n",
    )  # fmt: skip
    assert "momentum" in message


def test_user_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.DIR_ENV, str(EXAMPLES))
    assert "low_volatility" in registry.available()
    assert resolve("low_volatility").__name__ == "LowVolatility"
    monkeypatch.delenv(registry.DIR_ENV)
    monkeypatch.chdir(tmp_path)  # no ./user_strategies here
    with pytest.raises(StrategyLookupError, match="unknown strategy 'low_volatility'"):
        resolve("low_volatility")


def test_entry_point_of_an_installed_package(tmp_path, monkeypatch):
    (tmp_path / "ep_plugin_mod.py").write_text(PLUGIN.format(name="first_ep"))
    dist = tmp_path / "ep_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nfirst_ep = ep_plugin_mod:First\n"
        "broken_ep = ep_plugin_mod:Nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"first_ep", "broken_ep"} <= set(registry.entry_point_names())
    assert resolve("first_ep").name == "first_ep"
    with pytest.raises(StrategyLookupError, match="entry point 'broken_ep'.*failed to load"):
        resolve("broken_ep")


@pytest.mark.parametrize(
    ("code", "ref", "expected"),
    [
        ("class NotOne:\n    pass\n", "bad_mod_a:NotOne", "not a subclass of strategies.base"),
        (
            "from strategies.base import Strategy\nclass NoWeights(Strategy):\n    name = 'x'\n",
            "bad_mod_b:NoWeights",
            "does not define target_weights",
        ),
        (
            "from strategies.base import Strategy\nclass P(Strategy):\n    name = 'x'\n"
            "    Params = dict\n    def target_weights(self, ctx):\n        return None\n",
            "bad_mod_c:P",
            "Params must be a subclass",
        ),
        ("raise RuntimeError('boom')\n", "bad_mod_d:X", "RuntimeError: boom"),
        ("", "bad_mod_e:Missing", "has no 'Missing'"),
        ("", "no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    ],
)
def test_a_class_that_is_not_a_strategy_is_refused_with_key_and_line(
    tmp_path, monkeypatch, code, ref, expected
):
    module = ref.split(":")[0]
    if module.startswith("bad_mod"):
        (tmp_path / f"{module}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    _refused(_config(tmp_path, f"  name: {ref}\n"), "strategy.name (line 5)", expected)


def test_folder_problems_are_one_line_errors(tmp_path):
    folder = tmp_path / "dup"
    folder.mkdir()
    (folder / "a.py").write_text(PLUGIN.format(name="same"))
    (folder / "b.py").write_text(PLUGIN.format(name="same"))
    with pytest.raises(StrategyLookupError, match="'same' is defined twice: in a.py and b.py"):
        resolve("same", str(folder))
    with pytest.raises(StrategyLookupError, match="does not exist"):
        resolve("x", str(tmp_path / "missing"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "oops.py").write_text("def f(:\n")
    with pytest.raises(StrategyLookupError, match=r"oops.py: importing it failed \(SyntaxError"):
        resolve("x", str(broken))


def test_the_example_plugin_gives_valid_inverse_volatility_weights():
    cls = resolve("low_volatility", str(EXAMPLES))
    assert issubclass(cls, Strategy) and cls.Params().n == 5
    ctx = _ctx()
    strategy = cls(cls.Params(n=4, lookback=60))
    w = strategy.target_weights(ctx)
    pd.testing.assert_series_equal(w, strategy.target_weights(_ctx()))
    assert len(w) == 4 and (w > 0).all() and w.sum() == pytest.approx(1.0)
    vol = ctx.closes.tail(61).pct_change().iloc[1:].std()
    assert set(w.index) == set(vol.nsmallest(4).index)
    np.testing.assert_allclose(w * vol[w.index], (w * vol[w.index]).iloc[0])  # w ~ 1 / vol
    short = PlanContext(ctx.as_of, ctx.scores, ctx.closes.tail(30), ctx.current_weights)
    assert strategy.target_weights(short).empty  # not enough history: cash
