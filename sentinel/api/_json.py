"""JSON responses that never fail on NaN: metrics may be undefined (NaN) and JSON has no NaN."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse


def clean(value: Any) -> Any:
    """``value`` with non-finite floats as None (recursively through dicts and lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def dumps(content: Any) -> bytes:
    """Compact UTF-8 JSON; a lone surrogate (a JSON ``"\\ud800"`` sent back) becomes ``?``."""
    return json.dumps(
        clean(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str
    ).encode("utf-8", "replace")


class SafeJSONResponse(JSONResponse):
    """The app's default response: compact JSON with NaN/inf written as null."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
