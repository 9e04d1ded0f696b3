"""The ``sentinel`` command line: the outermost layer; nothing imports it."""

from sentinel.cli.main import app, main

__all__ = ["app", "main"]
