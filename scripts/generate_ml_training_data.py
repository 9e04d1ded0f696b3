"""Generate the weekly training samples (full, or --incremental for the recent 90 days).

Thin entry point named in the design notes; the same as ``sentinel ml samples``, see ``--help``.
The store is ``SENTINEL_DATABASE_URL`` (default ``sqlite:///sentinel.db``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from cli.ml import app  # noqa: E402

if __name__ == "__main__":
    app(["samples", *sys.argv[1:]], prog_name=os.path.basename(__file__))
