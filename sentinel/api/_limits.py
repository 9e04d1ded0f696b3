"""What a request may cost and what an error may repeat: a body cap and bounded 422 answers.

* :class:`BodyLimit` refuses a body larger than ``SENTINEL_MAX_BODY_BYTES`` with 413: from its
  ``Content-Length`` before a byte is read, or, for a chunked body, as soon as the bytes read pass
  the limit. The connection is closed after the answer, so the rest is never read either.
* :func:`error_items` turns validation errors into ``{"loc": [...], "msg": "..."}`` items: the
  field and the problem, never the value sent (pydantic's ``input``), and a bounded number of
  short items, so an answer stays small whatever the request held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sentinel.api._json import SafeJSONResponse

#: At most this many errors are listed (then one item says how many more there were).
MAX_ERRORS = 8
#: Longest part of a location (a key of the request may be long) and longest message. Every
#: settings key is at most 26 characters; a longer, unknown key is named by its first 31 and an
#: ellipsis, so an answer never echoes a 40-character string of the request (the fuzz test's
#: echo rule; at 48 it found a 40-character key echoed whole).
MAX_LOC_PART = 32
MAX_MSG = 160
_CLOSE = {"Connection": "close"}


def _too_large_message(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes (SENTINEL_MAX_BODY_BYTES)"


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, decided before the body is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not (declared.strip().isascii() and declared.strip().isdigit()):
                await self._answer(scope, receive, send, 400, "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                await self._answer(scope, receive, send, 413, _too_large_message(self.max_bytes))
                return
        read = 0

        async def capped_receive() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_bytes:
                    # an HTTPException: FastAPI lets it through its body parsing to the app's
                    # handler, which answers 413 (with Connection: close)
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE,
                        _too_large_message(self.max_bytes),
                        headers=_CLOSE,
                    )
            return message

        await self.app(scope, capped_receive, send)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, code: int, msg: str) -> None:
        await SafeJSONResponse({"detail": msg}, code, headers=_CLOSE)(scope, receive, send)


def _short(text: str, limit: int) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":  # the parser's reason, e.g. "Expecting ',' delimiter"
        reason = (error.get("ctx") or {}).get("error")
        msg = f"{msg}: {reason}" if reason else msg
    return _short(msg, MAX_MSG)


def error_items(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{"loc": [...], "msg": "..."}]``: where and what, without the value; bounded in size."""
    errors = list(errors)
    items = [
        {
            "loc": [
                p if isinstance(p, int) else _short(str(p), MAX_LOC_PART)
                for p in tuple(e.get("loc", ()))[:6]
            ],
            "msg": _message(e),
        }
        for e in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        items.append({"loc": [], "msg": f"... and {len(errors) - MAX_ERRORS} more errors"})
    return items
