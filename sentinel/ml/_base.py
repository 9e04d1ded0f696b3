"""``get_params`` once for every model, read off ``__init__`` as scikit-learn's BaseEstimator does.

A model declares its hyperparameters only as keyword parameters of ``__init__`` and stores each
one unchanged in an attribute of the same name; ``get_params`` then needs no per-class list.
"""

from __future__ import annotations

import inspect
from typing import Any


class BaseModel:
    """Mixin giving ``get_params`` by signature introspection of the subclass's ``__init__``."""

    @classmethod
    def _param_names(cls) -> list[str]:
        """``__init__`` parameter names in declaration order (``*args`` refused, as in sklearn).

        Memoised per class (``inspect.signature`` costs ~0.2 ms and a walk-forward run clones
        thousands of models); a copy is returned, so callers may change their list."""
        names = cls.__dict__.get("_param_names_memo")
        if names is None:
            names = cls._inspect_param_names()
            cls._param_names_memo = names  # type: ignore[attr-defined]
        return list(names)

    @classmethod
    def _inspect_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            if p.kind == p.VAR_POSITIONAL:
                raise TypeError(f"{cls.__name__}.__init__ must not take *args: {p}")
            names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters by name (nested models as objects, like sklearn's ``deep=False``).

        JSON-able for the NN and XGBoost models (tuples serialise as lists), which is how the
        store writes them into ``*_metadata.json``.
        """
        return {name: getattr(self, name) for name in self._param_names()}
