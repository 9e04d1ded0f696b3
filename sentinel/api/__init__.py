"""The HTTP service: the notes' REST API, the web UI and the weekly retrain (``sentinel serve``)."""

from sentinel.api.main import create_app

__all__ = ["create_app"]
