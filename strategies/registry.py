"""Where a strategy name in a config comes from: built-ins, your code, installed packages.

A config's ``strategy.name`` is looked up, in this order, as

1. a built-in key (``top_n``, ``score_weighted``, ``momentum``);
2. ``package.module:ClassName``: any importable module (installed, or on ``PYTHONPATH``), the way
   qlib and freqtrade let a config point at user code;
3. the ``name`` of a strategy class defined in a ``*.py`` file of the user folder:
   ``strategy.dir`` in the config, else ``$SENTINEL_STRATEGIES_DIR``, else ``./user_strategies``;
4. an entry point of the group ``sentinel.strategies`` declared by an installed package
   (``[project.entry-points."sentinel.strategies"] my_name = "my_pkg.mod:MyStrategy"``).

Whatever the source, the class must implement :class:`strategies.base.Strategy` (subclass it,
define ``target_weights`` and, if it takes parameters, a ``Params`` subclass of
:class:`~strategies.base.StrategyParams`); anything else is refused with one line saying what is
missing. Errors are :class:`StrategyLookupError` (a ``ValueError``, so a config validator turns
it into ``strategy.name (line N): ...``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from sentinel.plugins import import_reference
from strategies.base import Strategy, StrategyParams
from strategies.rules import Momentum, ScoreWeighted, TopN

#: Entry-point group an installed package uses to offer strategies by name.
ENTRY_POINT_GROUP = "sentinel.strategies"
#: Environment variable naming the user strategy folder when the config names none.
DIR_ENV = "SENTINEL_STRATEGIES_DIR"
#: Folder (relative to the working directory) searched when neither the config nor the env names
#: one; ignored when it does not exist.
DEFAULT_DIR = Path("user_strategies")

BUILTIN: dict[str, type[Strategy]] = {cls.name: cls for cls in (TopN, ScoreWeighted, Momentum)}

_FILE_MODULES: dict[tuple[str, int], ModuleType] = {}


class StrategyLookupError(ValueError):
    """A strategy name that resolves to nothing usable; the message says why, in one line."""


def check_strategy_class(obj: object, where: str) -> type[Strategy]:
    """``obj`` if it implements the strategy interface, else a one-line error naming ``where``."""
    if not inspect.isclass(obj) or not issubclass(obj, Strategy):
        raise StrategyLookupError(f"{where} is {obj!r}, not a subclass of strategies.base.Strategy")
    if obj.target_weights is Strategy.target_weights:
        raise StrategyLookupError(f"{where} does not define target_weights(self, ctx)")
    params = getattr(obj, "Params", None)
    if not inspect.isclass(params) or not issubclass(params, StrategyParams):
        raise StrategyLookupError(
            f"{where}.Params must be a subclass of strategies.base.StrategyParams"
        )
    if not isinstance(getattr(obj, "name", None), str) or not obj.name:
        raise StrategyLookupError(f"{where} needs a class attribute name = '...' (a string)")
    return obj


def user_dir(configured: str | None = None) -> Path | None:
    """The user strategy folder in force: the config's, the environment's, or ./user_strategies."""
    if configured:
        return Path(configured)
    env = os.environ.get(DIR_ENV)
    if env:
        return Path(env)
    return DEFAULT_DIR if DEFAULT_DIR.is_dir() else None


def _load_file(path: Path) -> ModuleType:
    """Import one user file as its own module (cached by path and modification time)."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key in _FILE_MODULES:
        return _FILE_MODULES[key]
    digest = hashlib.sha1(key[0].encode()).hexdigest()[:10]
    mod_name = f"sentinel_user_strategies.{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a spec
        raise StrategyLookupError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - user code: report any failure as one line
        sys.modules.pop(mod_name, None)
        raise StrategyLookupError(
            f"{path}: importing it failed ({type(exc).__name__}: {exc})"
        ) from None
    _FILE_MODULES[key] = module
    return module


def folder_strategies(folder: Path) -> dict[str, type[Strategy]]:
    """name -> class for the strategy classes defined in ``folder/*.py`` (files starting with
    ``_`` skipped). Two classes with one name are an error naming both files."""
    if not folder.is_dir():
        raise StrategyLookupError(f"strategy folder {folder} does not exist or is not a folder")
    found: dict[str, tuple[type[Strategy], Path]] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _load_file(path)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ != module.__name__ or not issubclass(obj, Strategy):
                continue
            cls = check_strategy_class(obj, f"{path.name}:{obj.__name__}")
            if cls.name in found:
                other = found[cls.name][1].name
                raise StrategyLookupError(
                    f"strategy name {cls.name!r} is defined twice: in {other} and {path.name}"
                )
            found[cls.name] = (cls, path)
    return {name: cls for name, (cls, _) in found.items()}


def entry_point_names() -> list[str]:
    """Names installed packages offer in the ``sentinel.strategies`` group."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _from_entry_point(name: str) -> type[Strategy] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plug-in: one clear line
                raise StrategyLookupError(
                    f"entry point {name!r} ({ep.value}) failed to load ({type(exc).__name__}: "
                    f"{exc})"
                ) from None
            return check_strategy_class(obj, f"entry point {name!r} ({ep.value})")
    return None


def _from_import_path(ref: str) -> type[Strategy]:
    return check_strategy_class(import_reference(ref, "ClassName", StrategyLookupError), ref)


def available(folder: str | None = None) -> list[str]:
    """Every name a config may use here: built-ins, the user folder's, entry points'."""
    names = set(BUILTIN) | set(entry_point_names())
    where = user_dir(folder)
    if where is not None and where.is_dir():
        names |= set(folder_strategies(where))
    return sorted(names)


def resolve(name: str, folder: str | None = None) -> type[Strategy]:
    """The strategy class a config's ``strategy.name`` stands for (see the module docstring)."""
    if folder and not Path(folder).is_dir():  # a configured folder must exist, whatever the name
        raise StrategyLookupError(f"strategy.dir {folder} does not exist or is not a folder")
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        return _from_import_path(name)
    where = user_dir(folder)
    if where is not None and where.is_dir():
        local = folder_strategies(where)
        if name in local:
            return local[name]
    cls = _from_entry_point(name)
    if cls is not None:
        return cls
    raise StrategyLookupError(
        f"unknown strategy {name!r}; available: {', '.join(available(folder))} "
        "(or 'package.module:ClassName')"
    )
