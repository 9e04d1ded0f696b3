"""The web UI: one HTML page (Jinja2) and its static files; plotly.js from the installed package.

No build step and no CDN (the target machine is offline): the page's script talks to the JSON API
like any client, and plotly.js is served from ``plotly/package_data/plotly.min.js``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from sentinel.settings import ml_bounds

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def plotly_js() -> Path | None:
    """The plotly.min.js shipped inside the plotly Python package, if present."""
    try:
        # lazy: plotly costs seconds; only the page with a chart needs it
        import plotly
    except ImportError:  # pragma: no cover - plotly is a dependency
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "index.html", {"has_plotly": plotly_js() is not None, "bounds": ml_bounds()}
    )


@router.get("/vendor/plotly.min.js")
def plotly() -> FileResponse:
    path = plotly_js()
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "plotly.js is not installed")
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )
