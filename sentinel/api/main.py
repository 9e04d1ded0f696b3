"""The app factory and ``sentinel serve``.

:func:`create_app` takes the store and settings as arguments (defaults: ``get_settings()`` and the
store it names), so tests and benches build an app on a temporary database with no globals. The
weekly scheduler only runs when asked for (``sentinel serve`` does).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from sentinel.api._cache import RenderedCache, ValueCache
from sentinel.api._json import SafeJSONResponse
from sentinel.api._limits import BodyLimit, error_items
from sentinel.api.deps import is_loopback as _is_loopback
from sentinel.api.routes import docs, ml, ml_performance, runs, ui
from sentinel.api.routes import settings as settings_routes
from sentinel.db import Store
from sentinel.errors import ConfigError, NotFoundError, SentinelError
from sentinel.retrain import RetrainManager
from sentinel.settings import Settings, get_settings, token_problem

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


_FIX = (
    "set a secret one, e.g. export "
    "SENTINEL_API_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
)


def check_token(settings: Settings, host: str | None = None) -> None:
    """Refuse to serve without a real API token, except on loopback in explicit development.

    A real token is set, not a placeholder such as ``changeme`` (public knowledge: anyone who
    reaches the port could change settings or start retrains) and at least 16 characters long.
    Without one the app only starts when ``SENTINEL_ENVIRONMENT=development`` (the default is
    ``production``, so that is the user's choice) and ``host``, the interface it will listen
    on, is loopback; a placeholder token is then accepted from loopback clients only
    (:func:`sentinel.api.deps.require_token`). ``host=None`` (an app built by a test or an ASGI
    server's factory) checks the environment alone.
    """
    problem = token_problem(settings.api_token)
    if problem is None:
        return
    if settings.environment != "development":
        raise ConfigError(
            f"{problem}: refusing to serve (SENTINEL_ENVIRONMENT is {settings.environment!r}; "
            f"only a loopback server with SENTINEL_ENVIRONMENT=development may run without a "
            f"real token); {_FIX}"
        )
    if host is not None and not _is_loopback(host):
        raise ConfigError(
            f"{problem}: refusing to serve on {host} (without a real token the API listens on "
            f"loopback only); {_FIX}"
        )
    writes = (
        "writes are disabled" if not settings.api_token.strip()
        else "the token is accepted from loopback clients only"
    )  # fmt: skip
    log.warning("%s: serving because SENTINEL_ENVIRONMENT=development; %s", problem, writes)


def create_app(
    store: Store | None = None,
    settings: Settings | None = None,
    *,
    retrain: RetrainManager | None = None,
    scheduler: bool = False,
    host: str | None = None,
) -> FastAPI:
    """The FastAPI app on ``store`` with ``settings`` (both default to the environment's).

    ``retrain`` lets tests inject a manager with tiny epochs; the default one trains in a
    separate low-priority process (``isolated``), so requests never wait on training.
    ``scheduler`` starts the weekly job with the app (``sentinel serve``). ``host`` is the
    interface it will be served on, for :func:`check_token` (which runs before anything else).
    """
    settings = settings or get_settings()
    check_token(settings, host)
    store = store or Store(settings.database_url)
    retrain = retrain or RetrainManager(store, settings, isolated=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sched = None
        if scheduler:
            from sentinel.scheduler import start_scheduler  # lazy: APScheduler, only when wanted

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
        docs_url=None,  # served offline by routes/docs.py
        redoc_url=None,  # ReDoc loads from a CDN only
    )
    app.state.store = store
    app.state.settings = settings
    app.state.retrain = retrain
    app.state.models_cache = RenderedCache()
    app.state.status_cache = ValueCache()
    app.state.runs_cache = RenderedCache()
    for router in (settings_routes.router, ml.router, ml_performance.router, runs.router,
                   ui.router, docs.router):  # fmt: skip
        app.include_router(router)
    docs.mount_assets(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> SafeJSONResponse:
        """Field and message only: the body (or a value of it) is never sent back."""
        return SafeJSONResponse(
            {"detail": error_items(exc.errors())}, status.HTTP_422_UNPROCESSABLE_CONTENT
        )

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
    """Run the app under uvicorn (one process: the retrain lock and the scheduler are in it).

    Without a real ``SENTINEL_API_TOKEN`` it refuses to start (:func:`check_token`) before the
    store is opened or anything is logged: one line and exit code 1 from the CLI.
    """
    import uvicorn  # lazy: only `sentinel serve` runs a server; tests use the app in-process

    base = _environment_settings()
    if database_url:
        base = base.model_copy(update={"database_url": database_url})
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    app = create_app(None, base, scheduler=scheduler, host=host)
    if not _is_loopback(host):
        log.warning("binding %s: the API is reachable from other machines", host)
    # keep-alive longer than the UI's 10 s poll: a server-side close racing a client's reuse of
    # the connection is a failed request for the client
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, timeout_keep_alive=30,
        loop=_best("uvloop", "asyncio"), http=_best("httptools", "h11"),
    )  # fmt: skip


def _best(module: str, fallback: str) -> str:
    """``module`` when installed (uvicorn[standard]'s faster loop / HTTP parser), else fallback."""
    return module if importlib.util.find_spec(module) is not None else fallback


def _environment_settings() -> Settings:
    """:func:`get_settings`, with a bad ``SENTINEL_*`` value as one line naming the variable."""
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SENTINEL_" + str(first["loc"][0]).upper() if first["loc"] else "SENTINEL_*"
        raise ConfigError(f"{name}: {first['msg']}") from None
