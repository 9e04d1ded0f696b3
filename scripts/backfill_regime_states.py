"""Fill ``regime_states`` with the HMM regime of every (symbol, date), as of each date.

Usage: ``python scripts/backfill_regime_states.py [--symbols A,B] [--start D] [--end D]
[--db URL] [--commit-every N] [--workers N] [--verify N]``. Resumable (existing rows are
skipped); the work lives in :mod:`sentinel.regime_backfill` (same as ``sentinel regime backfill``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cli.regime import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main())
