"""``/docs``: Swagger UI served from the installed ``swagger-ui-bundle`` package, not a CDN.

The machines that run the service are offline, so FastAPI's default page (scripts from a CDN)
would be blank. The bundle's assets are mounted at ``/vendor/swagger-ui``; without the package
``/docs`` says what to install instead of showing an empty page. ReDoc is off (CDN only).

Swagger UI 4 (what the package ships) reads OpenAPI 3.0 documents only, so the page loads
``/docs/openapi.json``: the app's schema labelled 3.0.3. FastAPI's schema uses no 3.1-only
construct the viewer cannot show (``anyOf`` with a null type renders as a choice);
``/openapi.json`` itself stays the 3.1 document.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
ASSETS = "/vendor/swagger-ui"
#: The version label Swagger UI 4 accepts.
VIEWER_OPENAPI = "3.0.3"


@lru_cache(maxsize=1)
def swagger_assets() -> Path | None:
    """The folder of swagger-ui-bundle's assets, or None when the package is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def mount_assets(app: FastAPI) -> None:
    """Serve the bundle's files (before ``/static``, so the longer prefix wins)."""
    folder = swagger_assets()
    if folder is not None:
        app.mount(ASSETS, StaticFiles(directory=folder), name="swagger-ui")


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    if swagger_assets() is None:
        return HTMLResponse(
            "<!doctype html><title>sentinel API docs</title><p>Swagger UI is not installed: "
            "<code>pip install swagger-ui-bundle</code>. The schema is at "
            '<a href="/openapi.json">/openapi.json</a>.</p>',
            status_code=503,
        )
    return get_swagger_ui_html(
        openapi_url="/docs/openapi.json",
        title=f"{request.app.title} API docs",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # no call to the online validator
    )


@router.get("/docs/openapi.json")
def viewer_schema(request: Request) -> JSONResponse:
    """The app's schema labelled for Swagger UI 4 (see the module docstring)."""
    return JSONResponse({**request.app.openapi(), "openapi": VIEWER_OPENAPI})
