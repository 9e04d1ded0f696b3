"""The ``sentinel`` command line: the outermost layer, above ``engine``, ``strategies`` and the
domain ``sentinel``; nothing imports it."""

from cli.main import app, main

__all__ = ["app", "main"]
