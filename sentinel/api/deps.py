"""Dependencies of the routes: the store, settings, the retrain manager, the token, symbols.

They are ``async`` although some read the database: each is one indexed SQLite/PostgreSQL query
of well under a millisecond, and running them on the event loop instead of the thread pool is what
keeps tail latency low under 50 concurrent clients (no thread hop, no GIL convoy of 40 workers).

Everything comes from ``app.state`` (set by :func:`sentinel.api.main.create_app`), so tests build
an app on a temporary store, or override any of these with ``app.dependency_overrides``.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sentinel.db import Store
from sentinel.errors import NotFoundError
from sentinel.retrain import RetrainManager
from sentinel.settings import Settings, effective_settings

#: What a symbol may look like (as the model folders accept): no slash, no leading dot, <= 32.
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9._^=-]{0,31}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_base_settings(request: Request) -> Settings:
    """The process settings (environment); the ml_* keys may be overridden in the database."""
    return request.app.state.settings


async def get_retrain(request: Request) -> RetrainManager:
    return request.app.state.retrain


StoreDep = Annotated[Store, Depends(get_store)]
BaseSettingsDep = Annotated[Settings, Depends(get_base_settings)]
RetrainDep = Annotated[RetrainManager, Depends(get_retrain)]


async def get_effective_settings(store: StoreDep, base: BaseSettingsDep) -> Settings:
    """Environment plus the overrides stored through ``POST /api/settings``: what runs use."""
    return effective_settings(store.records.get_stored_settings(), base)


EffectiveSettingsDep = Annotated[Settings, Depends(get_effective_settings)]

_bearer = HTTPBearer(auto_error=False, description="SENTINEL_API_TOKEN, needed for every write.")


async def require_token(
    base: BaseSettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Writes need ``Authorization: Bearer <SENTINEL_API_TOKEN>``: 401 without, 403 if wrong."""
    if creds is None or not creds.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API token: send 'Authorization: Bearer <SENTINEL_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not base.api_token or not secrets.compare_digest(
        creds.credentials.encode(), base.api_token.encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong API token")


TokenDep = Depends(require_token)


def known_symbol(
    store: StoreDep,
    symbol: Annotated[
        str, Path(pattern=SYMBOL_PATTERN, max_length=32, description="A known security.")
    ],
) -> str:
    """A symbol of the securities table (404 otherwise); never a path."""
    if ".." in symbol or not _SYMBOL.match(symbol):  # the pattern already ran; defence in depth
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid symbol {symbol!r}")
    try:
        store.market.get_security(symbol)
    except NotFoundError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown symbol {symbol!r}: not in the securities table"
        ) from None
    return symbol


SymbolDep = Annotated[str, Depends(known_symbol)]
