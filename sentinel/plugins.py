"""Load user code named ``package.module:attr`` (strategies and features share this rule).

Why one place: a plug-in reference in a config must fail the same way whatever it names, as one
line that says what to fix (the module cannot be imported, its import raised, or the attribute is
missing), never a traceback from the user's module.
"""

from __future__ import annotations

import importlib


def import_reference(ref: str, what: str, error: type[Exception]) -> object:
    """The object ``package.module:attr`` (``attr`` may be dotted) names, or ``error(one line)``.

    ``what`` completes "write a plug-in ... as 'package.module:<what>'" (e.g. ``ClassName``).
    """
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise error(f"{ref!r}: write a plug-in as 'package.module:{what}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(
            f"{ref!r}: cannot import module {module_name!r} ({exc}); install it or add its "
            "folder to PYTHONPATH"
        ) from None
    except Exception as exc:  # noqa: BLE001 - user code: report any failure as one line
        raise error(
            f"{ref!r}: importing {module_name!r} failed ({type(exc).__name__}: {exc})"
        ) from None
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise error(f"{ref!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj
