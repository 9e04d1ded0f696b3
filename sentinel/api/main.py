"""The app factory and ``sentinel serve``.

:func:`create_app` takes the store and settings as arguments (defaults: ``get_settings()`` and the
store it names), so tests and benches build an app on a temporary database with no globals. The
weekly scheduler only runs when asked for (``sentinel serve`` does).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.staticfiles import StaticFiles

from sentinel.api._cache import RenderedCache, ValueCache
from sentinel.api._json import SafeJSONResponse
from sentinel.api.routes import ml, runs, ui
from sentinel.api.routes import settings as settings_routes
from sentinel.db import Store
from sentinel.errors import ConfigError, NotFoundError, SentinelError
from sentinel.retrain import RetrainManager
from sentinel.settings import PLACEHOLDER_TOKENS, Settings, get_settings

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


def check_token(settings: Settings) -> None:
    """Refuse a placeholder API token outside development (warn in development).

    A placeholder such as ``changeme`` is public knowledge: with it anyone who reaches the port
    could change settings or start retrains.
    """
    if settings.api_token.strip().lower() not in PLACEHOLDER_TOKENS:
        return
    msg = (
        f"SENTINEL_API_TOKEN is a placeholder ({settings.api_token!r}); set a secret one, e.g. "
        "SENTINEL_API_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )
    if settings.environment != "development":
        raise ConfigError(f"{msg} (refused: environment is {settings.environment!r})")
    log.warning("%s (allowed only because environment is 'development')", msg)


def create_app(
    store: Store | None = None,
    settings: Settings | None = None,
    *,
    retrain: RetrainManager | None = None,
    scheduler: bool = False,
) -> FastAPI:
    """The FastAPI app on ``store`` with ``settings`` (both default to the environment's).

    ``retrain`` lets tests inject a manager with tiny epochs; the default one trains in a
    separate low-priority process (``isolated``), so requests never wait on training.
    ``scheduler`` starts the weekly job with the app (``sentinel serve``).
    """
    settings = settings or get_settings()
    check_token(settings)
    store = store or Store(settings.database_url)
    retrain = retrain or RetrainManager(store, settings, isolated=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sched = None
        if scheduler:
            from sentinel.scheduler import start_scheduler

            sched = start_scheduler(retrain, settings.timezone)
        try:
            yield
        finally:
            if sched is not None:
                sched.shutdown(wait=False)
            retrain.shutdown()  # a training process must not outlive the server

    app = FastAPI(
        title="sentinel",
        summary="Per-security ML scores: settings, models, retraining, stored backtests.",
        version="0.1.0",
        default_response_class=SafeJSONResponse,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.retrain = retrain
    app.state.models_cache = RenderedCache()
    app.state.status_cache = ValueCache()
    app.state.runs_cache = RenderedCache()
    for router in (settings_routes.router, ml.router, runs.router, ui.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> SafeJSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)

    @app.exception_handler(SentinelError)
    async def _sentinel_error(_: Request, exc: SentinelError) -> SafeJSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    database_url: str | None = None,
    scheduler: bool = True,
    log_level: str = "info",
) -> None:
    """Run the app under uvicorn (one process: the retrain lock and the scheduler are in it)."""
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    base = get_settings()
    if not _is_loopback(host):
        log.warning("binding %s: the API is reachable from other machines", host)
    app = create_app(Store(database_url or base.database_url), base, scheduler=scheduler)
    # keep-alive longer than the UI's 10 s poll: a server-side close racing a client's reuse of
    # the connection is a failed request for the client
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, timeout_keep_alive=30,
        loop=_best("uvloop", "asyncio"), http=_best("httptools", "h11"),
    )  # fmt: skip


def _best(module: str, fallback: str) -> str:
    """``module`` when installed (uvicorn[standard]'s faster loop / HTTP parser), else fallback."""
    import importlib.util

    return module if importlib.util.find_spec(module) is not None else fallback


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
