"""The one rule for what a symbol may be: at import, in configs, in the API and as a model folder.

``SYMBOL_PATTERN``: an optional leading ``^`` (index symbols such as ``^GSPC``), then an upper-case
letter or digit, then up to 15 of ``A-Z 0-9 . - =`` (share classes ``BRK.B``, ``BF-B``; futures
``ES=F``). No lower case, no slash, no ``..``, nothing outside ASCII: a symbol is also a folder
name under ``data/ml_models/`` and a URL path segment, so the rule is strict on purpose.
"""

from __future__ import annotations

import re

from sentinel.errors import SentinelError

SYMBOL_PATTERN = r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,15}$"
#: The rule in words, for error messages.
SYMBOL_RULE = "upper-case letters, digits and . - =, at most 16 characters, an optional leading ^"
_SYMBOL = re.compile(SYMBOL_PATTERN)


class InvalidSymbolError(SentinelError, ValueError):
    """A symbol that breaks :data:`SYMBOL_PATTERN`."""


def is_valid_symbol(symbol: object) -> bool:
    """True when ``symbol`` is a str matching :data:`SYMBOL_PATTERN` (and has no ``..``)."""
    return isinstance(symbol, str) and bool(_SYMBOL.fullmatch(symbol)) and ".." not in symbol


def check_symbol(symbol: object, where: str = "symbol") -> str:
    """``symbol`` itself, or :class:`InvalidSymbolError` naming ``where`` and the rule."""
    if not is_valid_symbol(symbol):
        raise InvalidSymbolError(f"{where}: invalid symbol {symbol!r} ({SYMBOL_RULE})")
    return symbol  # type: ignore[return-value]
