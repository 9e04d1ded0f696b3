"""Dependencies of the routes: the store, settings, the retrain manager, the token, symbols.

They are ``async`` although some read the database: each is one indexed SQLite/PostgreSQL query
of well under a millisecond, and running them on the event loop instead of the thread pool is what
keeps tail latency low under 50 concurrent clients (no thread hop, no GIL convoy of 40 workers).

Everything comes from ``app.state`` (set by :func:`sentinel.api.main.create_app`), so tests build
an app on a temporary store, or override any of these with ``app.dependency_overrides``.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sentinel.db import Store
from sentinel.errors import NotFoundError
from sentinel.retrain import RetrainManager
from sentinel.settings import (
    Settings,
    StoredSettingsError,
    effective_settings,
    token_problem,
)
from sentinel.symbols import SYMBOL_PATTERN, is_valid_symbol  # the one rule, as model folders


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


def checked_settings(stored: dict[str, Any], base: Settings) -> Settings:
    """:func:`effective_settings`, or a 409 naming a stored key outside today's bounds.

    An older version may have stored a value the bounds now refuse (say a huge
    ``ml_min_samples_per_symbol``); the answer says which key, and posting a valid value for it
    repairs the store. The stored value itself is not repeated.
    """
    try:
        return effective_settings(stored, base)
    except StoredSettingsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


async def get_effective_settings(store: StoreDep, base: BaseSettingsDep) -> Settings:
    """Environment plus the overrides stored through ``POST /api/settings``: what runs use."""
    return checked_settings(store.records.get_stored_settings(), base)


EffectiveSettingsDep = Annotated[Settings, Depends(get_effective_settings)]

_bearer = HTTPBearer(auto_error=False, description="SENTINEL_API_TOKEN, needed for every write.")


def is_loopback(host: str | None) -> bool:
    """``host`` (a name or an address) is this machine only: localhost, 127.0.0.0/8, ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


async def require_token(
    request: Request,
    base: BaseSettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Writes need ``Authorization: Bearer <SENTINEL_API_TOKEN>``: 401 without, 403 if wrong.

    A server without a real token (only possible in development on loopback) refuses every write
    when none is set, and accepts a placeholder from loopback clients only.
    """
    if creds is None or not creds.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API token: send 'Authorization: Bearer <SENTINEL_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if token_problem(base.api_token) is not None:
        if not base.api_token.strip():
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "writes are disabled: the server has no SENTINEL_API_TOKEN",
            )
        if not is_loopback(request.client.host if request.client else None):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "the server's SENTINEL_API_TOKEN is not a real secret: accepted from loopback "
                "clients only",
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
    if not is_valid_symbol(symbol):  # the pattern already ran; defence in depth
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid symbol {symbol!r}")
    try:
        store.market.get_security(symbol)
    except NotFoundError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown symbol {symbol!r}: not in the securities table"
        ) from None
    return symbol


SymbolDep = Annotated[str, Depends(known_symbol)]
